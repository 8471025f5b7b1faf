// Package devidp is an embedded, in-memory OpenID Provider for `bff dev`
// and for tests.
//
// It is built on github.com/zitadel/oidc/v3/pkg/op with its own storage and
// behaves like ZITADEL where it matters to a Backend-for-Frontend:
//
//   - authorization code flow with PKCE (S256; a stored challenge makes the
//     code_verifier mandatory), confidential clients authenticating with
//     client_secret_basic or client_secret_post;
//   - JWT access tokens and ID tokens with aud [client_id, ProjectID],
//     azp, sid ("V2_<random>", one per login), the profile and email
//     claims, and the roles in ZITADEL's shape under
//     urn:zitadel:iam:org:project:roles and
//     urn:zitadel:iam:org:project:<ProjectID>:roles;
//   - rotating refresh tokens (offline_access): every use returns a new
//     one and the old one fails with invalid_grant at once; refreshed ID
//     tokens keep sub and sid and repeat the login's nonce (see
//     Config.OmitNonceOnRefresh);
//   - ZITADEL's reserved scopes (urn:zitadel:iam:...) are accepted;
//   - revocation (RFC 7009), RP-initiated logout with registered
//     post_logout_redirect_uri values, and back-channel logout tokens
//     (OpenID Connect Back-Channel Logout 1.0) POSTed synchronously;
//   - a login form with CSRF protection and an OP session cookie that
//     gives single sign-on to a second authorization request from the
//     same browser and makes prompt=none work.
//
// Trust model: this is a development tool. Users and passwords are plain
// text, the login page lists the demo credentials, http issuers are
// allowed, and all state (keys included) is lost when the process ends,
// so relying parties must re-login after a restart and refetch the JWKS
// on an unknown kid. Never expose it to untrusted networks.
//
// Endpoints, relative to the issuer: /.well-known/openid-configuration,
// /authorize (+ /authorize/callback), /oauth/token, /oauth/introspect,
// /userinfo, /revoke, /end_session, /keys, /healthz, /ready, and the UI
// pages /login (GET form, POST credentials) and /logged-out.
package devidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultProjectID is the default Config.ProjectID.
	DefaultProjectID = "bff-demo-project"
	// DefaultAccessTokenLifetime is the default Config.AccessTokenLifetime.
	DefaultAccessTokenLifetime = 5 * time.Minute
	// DefaultIDTokenLifetime is the default Config.IDTokenLifetime.
	DefaultIDTokenLifetime = time.Hour
	// DefaultRefreshTokenLifetime is the default Config.RefreshTokenLifetime.
	DefaultRefreshTokenLifetime = 24 * time.Hour
	// DefaultSessionLifetime is the default Config.SessionLifetime.
	DefaultSessionLifetime = 12 * time.Hour
)

// Config configures a Provider. Zero values take the documented defaults.
type Config struct {
	// Issuer is the issuer URL, e.g. "http://localhost:9998": http or
	// https, no trailing slash, no query or fragment. A path is allowed
	// (the provider then serves only below it). Required.
	Issuer string
	// Clients are the registered relying parties. At least one is required.
	Clients []Client
	// Users are the accounts that can sign in; nil means DemoUsers().
	Users []User
	// ProjectID is added to the aud of ID and access tokens and names the
	// per-project roles claim. Default DefaultProjectID ("bff-demo-project").
	ProjectID string
	// AccessTokenLifetime defaults to 5 minutes.
	AccessTokenLifetime time.Duration
	// IDTokenLifetime defaults to 1 hour.
	IDTokenLifetime time.Duration
	// RefreshTokenLifetime is the idle lifetime of a refresh token, renewed
	// by every rotation. Default 24 hours.
	RefreshTokenLifetime time.Duration
	// SessionLifetime is how long after a login the OP session cookie gives
	// single sign-on. Default 12 hours. Tokens are not bound to it.
	SessionLifetime time.Duration
	// DisableSSO makes every authorization request show the login form
	// (and prompt=none always fail with login_required).
	DisableSSO bool
	// OmitNonceOnRefresh leaves the nonce out of refreshed ID tokens, as
	// the op library does by default. By default the login's nonce is
	// repeated, as ZITADEL does.
	OmitNonceOnRefresh bool
	// HTTPClient sends back-channel logout tokens. Default: a client with
	// a 5 second timeout. A client without timeout gets 5 seconds per
	// delivery.
	HTTPClient *http.Client
	// Logger receives the provider's own log lines. Passwords, tokens,
	// codes and cookies are never logged. The zero Logger logs nothing.
	// (The op library logs through log/slog's default logger, which this
	// package leaves alone.)
	Logger zerolog.Logger
}

// Stats are counters for tests. Read them with Provider.Stats.
type Stats struct {
	// CodeExchanges counts authorization codes redeemed at /oauth/token.
	CodeExchanges int
	// Refreshes counts successful refresh token rotations.
	Refreshes int
	// Revocations counts tokens actually removed through /revoke.
	Revocations int
	// EndSessions counts successful requests to /end_session.
	EndSessions int
	// BackChannelSent counts logout tokens answered with 2xx.
	BackChannelSent int
	// BackChannelFailed counts logout tokens not delivered or answered
	// with another status.
	BackChannelFailed int
}

// Provider is the OpenID Provider. It is an http.Handler and safe for
// concurrent use.
type Provider struct {
	issuer  string
	store   *storage
	handler http.Handler
}

// New validates cfg, reporting every invalid setting at once, and returns
// a Provider with a fresh RSA-2048 signing key (RS256, random kid) and a
// fresh key for the library's encrypted authorization codes.
func New(cfg Config) (*Provider, error) {
	cfg = cfg.withDefaults()
	issuerURL, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	issuerPath := issuerURL.Path
	loginPath := issuerPath + "/login"
	cookiePath := issuerPath
	if cookiePath == "" {
		cookiePath = "/"
	}

	store := &storage{
		now:                time.Now,
		issuer:             cfg.Issuer,
		projectID:          cfg.ProjectID,
		accessTTL:          cfg.AccessTokenLifetime,
		refreshTTL:         cfg.RefreshTokenLifetime,
		sessionTTL:         cfg.SessionLifetime,
		disableSSO:         cfg.DisableSSO,
		omitNonceOnRefresh: cfg.OmitNonceOnRefresh,
		loggedOutURL:       cfg.Issuer + "/logged-out",
		backchannel:        &backchannelSender{client: cfg.HTTPClient, logger: cfg.Logger},
		clients:            make(map[string]*opClient, len(cfg.Clients)),
		usersByID:          make(map[string]*User, len(cfg.Users)),
		usersByName:        make(map[string]*User, len(cfg.Users)),
		authRequests:       make(map[string]*authRequest),
		codes:              make(map[string]string),
		accessTokens:       make(map[string]*accessToken),
		refreshTokens:      make(map[string]*refreshToken),
		sessions:           make(map[string]*opSession),
		browserSessions:    make(map[string]string),
		activeKey:          key,
	}
	for _, c := range cfg.Clients {
		store.clients[c.ID] = &opClient{Client: c, loginPath: loginPath, idTokenLifetime: cfg.IDTokenLifetime}
	}
	for i := range cfg.Users {
		u := &cfg.Users[i]
		store.usersByID[u.ID] = u
		store.usersByName[u.Username] = u
	}

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return nil, fmt.Errorf("generate crypto key: %w", err)
	}
	opConfig := &op.Config{
		CryptoKey:                         cryptoKey,
		DefaultLogoutRedirectURI:          store.loggedOutURL,
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		GrantTypeRefreshToken:             true,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
		SupportedScopes: []string{
			oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess,
			"urn:zitadel:iam:org:projects:roles",
			"urn:zitadel:iam:org:project:id:" + cfg.ProjectID + ":aud",
			"urn:zitadel:iam:org:project:id:zitadel:aud",
		},
		SupportedClaims: append(append([]string(nil), op.DefaultSupportedClaims...),
			"sid", RolesClaim, "urn:zitadel:iam:org:project:"+cfg.ProjectID+":roles"),
	}
	verifyKeys := verificationKeySet{store}
	provider, err := op.NewProvider(opConfig, store, op.StaticIssuer(cfg.Issuer),
		op.WithAllowInsecure(),
		op.WithIDTokenHintKeySet(verifyKeys),
		op.WithAccessTokenKeySet(verifyKeys),
	)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}

	ui, err := newLoginUI(store, cfg.Users, loginPath, cookiePath, issuerURL.Scheme == "https", cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	callback := op.AuthCallbackURL(provider)
	ui.callbackURL = func(r *http.Request, id string) string { return callback(r.Context(), id) }

	mux := http.NewServeMux()
	mux.Handle("/login", op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(ui))
	mux.HandleFunc("GET /logged-out", ui.loggedOut)
	mux.Handle("/", provider)
	var h http.Handler = withBrowserCookie(mux, ui)
	if issuerPath != "" {
		h = http.StripPrefix(issuerPath, h)
	}
	return &Provider{issuer: cfg.Issuer, store: store, handler: h}, nil
}

// withBrowserCookie passes the OP session cookie to the storage through
// the request context, with a function that expires it.
func withBrowserCookie(next http.Handler, ui *loginUI) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := &browser{clear: func() { ui.setCookie(w, sessionCookie, "", ui.cookiePath, -1) }}
		if c, err := r.Cookie(sessionCookie); err == nil {
			b.sessionKey = c.Value
		}
		next.ServeHTTP(w, r.WithContext(withBrowser(r.Context(), b)))
	})
}

// ServeHTTP serves the OpenID Provider endpoints and the login UI. Requests
// outside the issuer's path get 404.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// Issuer returns the issuer URL exactly as it appears in discovery and in
// the iss claim.
func (p *Provider) Issuer() string { return p.issuer }

// Stats returns a snapshot of the counters.
func (p *Provider) Stats() Stats {
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	return p.store.stats
}

// RotateKey generates a new RSA-2048 key and makes it the active signing
// key. The old key is removed from /keys at once, so a relying party that
// caches the JWKS must refetch it when it sees the new kid, and tokens
// signed with the old key no longer verify against /keys. The provider
// itself still accepts ID tokens signed with a retired key as
// id_token_hint.
func (p *Provider) RotateKey() error {
	key, err := newSigningKey()
	if err != nil {
		return err
	}
	p.store.rotateKey(key)
	return nil
}

// EndUserSessions ends every OP session of the user with the given subject,
// as an administrator would: their access and refresh tokens stop working
// and every client with a BackChannelLogoutURI that received tokens in one
// of those sessions gets a logout token (one per session), sent
// synchronously. It returns an error for an unknown user, and the joined
// delivery errors (the sessions are ended regardless).
func (p *Provider) EndUserSessions(ctx context.Context, sub string) error {
	return p.store.endUserSessions(ctx, sub)
}

func (c Config) withDefaults() Config {
	if c.Users == nil {
		c.Users = DemoUsers()
	}
	if c.ProjectID == "" {
		c.ProjectID = DefaultProjectID
	}
	if c.AccessTokenLifetime == 0 {
		c.AccessTokenLifetime = DefaultAccessTokenLifetime
	}
	if c.IDTokenLifetime == 0 {
		c.IDTokenLifetime = DefaultIDTokenLifetime
	}
	if c.RefreshTokenLifetime == 0 {
		c.RefreshTokenLifetime = DefaultRefreshTokenLifetime
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = DefaultSessionLifetime
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: defaultBackchannelTimeout}
	}
	// Copy the slices the provider keeps, so the caller cannot change them
	// underneath it.
	c.Clients = append([]Client(nil), c.Clients...)
	c.Users = append([]User(nil), c.Users...)
	return c
}

// validate checks the configuration and returns the parsed issuer.
func (c Config) validate() (*url.URL, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	issuer, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		fail("Issuer is required")
	case err != nil:
		fail("Issuer: %w", err)
	case issuer.Scheme != "http" && issuer.Scheme != "https":
		fail("Issuer %q: scheme must be http or https", c.Issuer)
	case issuer.Host == "":
		fail("Issuer %q: host is missing", c.Issuer)
	case strings.HasSuffix(c.Issuer, "/"):
		fail("Issuer %q: must not end with a slash", c.Issuer)
	case issuer.RawQuery != "" || issuer.Fragment != "" || issuer.User != nil:
		fail("Issuer %q: must not have a query, fragment or user info", c.Issuer)
	}

	if len(c.Clients) == 0 {
		fail("Clients: at least one client is required")
	}
	clientIDs := make(map[string]bool)
	for i, cl := range c.Clients {
		switch {
		case cl.ID == "":
			fail("Clients[%d]: ID is required", i)
		case clientIDs[cl.ID]:
			fail("Clients[%d]: duplicate ID %q", i, cl.ID)
		}
		clientIDs[cl.ID] = true
		if cl.Secret == "" {
			fail("Clients[%d] (%s): Secret is required", i, cl.ID)
		}
		if len(cl.RedirectURIs) == 0 {
			fail("Clients[%d] (%s): at least one redirect URI is required", i, cl.ID)
		}
		for _, u := range cl.RedirectURIs {
			if !absoluteURL(u) {
				fail("Clients[%d] (%s): redirect URI %q must be an absolute URL", i, cl.ID, u)
			}
		}
		for _, u := range cl.PostLogoutRedirectURIs {
			if !absoluteURL(u) {
				fail("Clients[%d] (%s): post-logout redirect URI %q must be an absolute URL", i, cl.ID, u)
			}
		}
		if cl.BackChannelLogoutURI != "" && !httpURL(cl.BackChannelLogoutURI) {
			fail("Clients[%d] (%s): back-channel logout URI %q must be an http(s) URL", i, cl.ID, cl.BackChannelLogoutURI)
		}
	}

	if len(c.Users) == 0 {
		fail("Users: at least one user is required (nil means the demo users)")
	}
	ids, names := make(map[string]bool), make(map[string]bool)
	for i, u := range c.Users {
		switch {
		case u.ID == "":
			fail("Users[%d]: ID is required", i)
		case ids[u.ID]:
			fail("Users[%d]: duplicate ID %q", i, u.ID)
		}
		switch {
		case u.Username == "":
			fail("Users[%d]: Username is required", i)
		case names[u.Username]:
			fail("Users[%d]: duplicate Username %q", i, u.Username)
		}
		ids[u.ID], names[u.Username] = true, true
		if u.Password == "" {
			fail("Users[%d] (%s): Password is required", i, u.Username)
		}
	}

	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"AccessTokenLifetime", c.AccessTokenLifetime},
		{"IDTokenLifetime", c.IDTokenLifetime},
		{"RefreshTokenLifetime", c.RefreshTokenLifetime},
		{"SessionLifetime", c.SessionLifetime},
	} {
		if d.v < 0 {
			fail("%s must not be negative", d.name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("devidp: invalid config: %w", err)
	}
	return issuer, nil
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
