// Package oidc speaks OpenID Connect to one provider on behalf of one app:
// authorization URLs, code exchange with full ID-token verification,
// refresh, revocation, end-session URLs and back-channel logout tokens.
//
// It is built on github.com/zitadel/oidc/v3 (aliased zoidc here) and works
// around the traps listed in research/libraries.md §1: discovery is lazy and
// retried, the nonce is checked per request, refresh goes through an
// OAuth-only relying party so a rotated refresh token is never lost to a
// failed ID-token check, and the end-session URL is built for the browser.
// It returns its own types and sentinel errors and never touches a
// ResponseWriter or a cookie.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Sentinel errors.
var (
	// ErrInvalidGrant: the provider rejected the code or refresh token for
	// good (invalid_grant). For a refresh this ends the session.
	ErrInvalidGrant = errors.New("oidc: invalid grant")
	// ErrProvider: the provider could not be reached or answered with an
	// error that may pass (network, timeout, 5xx, bad JSON). Sessions are
	// kept; a later request retries.
	ErrProvider = errors.New("oidc: provider unavailable")
	// ErrInvalidToken: a token failed verification.
	ErrInvalidToken = errors.New("oidc: invalid token")
	// ErrSubjectChanged: a refreshed ID token names another user than the
	// session's (OIDC Core §12.2); it wraps ErrInvalidToken.
	ErrSubjectChanged = fmt.Errorf("%w: subject changed", ErrInvalidToken)
)

// Config configures a Client.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// AuthMethod is client_secret_basic (default) or client_secret_post.
	AuthMethod            string
	Scopes                []string
	RedirectURL           string
	PostLogoutRedirectURL string
	// ClockSkew is the leeway for iat (and exp of logout tokens). Default 30s.
	ClockSkew time.Duration
	// ResponseMode "form_post" asks the provider to POST the response;
	// "" or "query" uses the default redirect.
	ResponseMode string
	// DefaultTokenLifetime is used when expires_in is missing and the
	// access token carries no exp. Default 5m.
	DefaultTokenLifetime time.Duration
	// HTTPClient for every call to the provider; it should have a timeout.
	HTTPClient *http.Client
	// Now is the clock, default time.Now.
	Now func() time.Time
}

// Client talks to one provider for one app. It is safe for concurrent use.
type Client struct {
	cfg Config

	mu       sync.Mutex
	relying  rp.RelyingParty // with discovery and the ID-token verifier
	refresh  rp.RelyingParty // OAuth-only, Scopes=nil: refresh and revoke
	endpoint rp.Endpoints
}

// New returns a Client. Discovery runs on first use (and again after a
// failure), so the BFF can start before its provider.
func New(cfg Config) *Client {
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 30 * time.Second
	}
	if cfg.DefaultTokenLifetime == 0 {
		cfg.DefaultTokenLifetime = 5 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}
}

type nonceKey struct{}

func (c *Client) authStyle() oauth2.AuthStyle {
	if c.cfg.AuthMethod == "client_secret_post" {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// Discover loads the provider's discovery document if not yet loaded.
func (c *Client) Discover(ctx context.Context) (rp.RelyingParty, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relying != nil {
		return c.relying, nil
	}
	relying, err := rp.NewRelyingPartyOIDC(ctx, c.cfg.Issuer, c.cfg.ClientID, c.cfg.ClientSecret, c.cfg.RedirectURL, c.cfg.Scopes,
		rp.WithHTTPClient(c.cfg.HTTPClient),
		rp.WithAuthStyle(c.authStyle()),
		rp.WithSigningAlgsFromDiscovery(),
		rp.WithVerifierOpts(
			rp.WithIssuedAtOffset(c.cfg.ClockSkew),
			rp.WithNonce(func(ctx context.Context) string {
				n, _ := ctx.Value(nonceKey{}).(string)
				return n
			}),
		),
	)
	if errors.Is(err, zoidc.ErrIssuerInvalid) {
		return nil, fmt.Errorf("%w: discovery at %s names another issuer: the configured issuer must equal discovery's \"issuer\" byte for byte (check a trailing slash): %w", ErrProvider, c.cfg.Issuer, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: discovery of %s: %w", ErrProvider, c.cfg.Issuer, err)
	}
	oc := *relying.OAuthConfig()
	oc.Scopes = nil
	oc.Endpoint.AuthStyle = c.authStyle()
	refresh, err := rp.NewRelyingPartyOAuth(&oc, rp.WithHTTPClient(c.cfg.HTTPClient), rp.WithAuthStyle(c.authStyle()))
	if err != nil {
		return nil, fmt.Errorf("oauth client: %w", err)
	}
	c.relying, c.refresh = relying, refresh
	c.endpoint = rp.Endpoints{EndSessionURL: relying.GetEndSessionEndpoint(), RevokeURL: relying.GetRevokeEndpoint(), UserinfoURL: relying.UserinfoEndpoint()}
	return relying, nil
}

// Ready reports whether discovery has been loaded (for /readyz).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.Discover(ctx)
	return err
}

// AuthRequest is one authorization request.
type AuthRequest struct {
	State, Nonce, Verifier string
	// Optional OIDC parameters passed through from /auth/login.
	Prompt, ACRValues, MaxAge, LoginHint string
}

// AuthURL returns the provider URL the browser is sent to: response_type
// code, PKCE S256 (RFC 7636), state and nonce.
func (c *Client) AuthURL(ctx context.Context, req AuthRequest) (string, error) {
	relying, err := c.Discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []rp.AuthURLOpt{
		rp.WithCodeChallenge(zoidc.NewSHACodeChallenge(req.Verifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", req.Nonce)),
	}
	if c.cfg.ResponseMode == "form_post" {
		opts = append(opts, rp.AuthURLOpt(rp.WithURLParam("response_mode", "form_post")))
	}
	for k, v := range map[string]string{"prompt": req.Prompt, "acr_values": req.ACRValues, "max_age": req.MaxAge, "login_hint": req.LoginHint} {
		if v != "" {
			opts = append(opts, rp.AuthURLOpt(rp.WithURLParam(k, v)))
		}
	}
	return rp.AuthURL(req.State, relying, opts...), nil
}

// Tokens is what a code exchange or refresh yields.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	TokenType    string
	Expiry       time.Time
	// Subject and SID come from the verified ID token.
	Subject string
	SID     string
	// Claims are the ID token's claims merged with userinfo (login only).
	Claims map[string]any
}

// Exchange redeems an authorization code with its PKCE verifier and
// verifies the ID token: signature (keys from the provider's JWKS, algs from
// discovery; a new kid triggers one refetch), iss, aud, azp, exp, iat with
// ClockSkew leeway, and nonce (OIDC Core §3.1.3.7).
//
// maxAge is the max_age of the authorization request ("" for none); with
// it the ID token must carry an auth_time no older than that (OIDC Core
// §3.1.2.1), so an app asking for a fresh login gets one.
func (c *Client) Exchange(ctx context.Context, code, verifier, nonce, maxAge string) (*Tokens, error) {
	relying, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	// The JWKS fetch is shared by concurrent verifications and bound to the
	// first caller's ctx: never let a client disconnect cancel it.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.HTTPClient.Timeout+time.Second)
	defer cancel()
	vctx = context.WithValue(vctx, nonceKey{}, nonce)
	vctx = context.WithValue(vctx, oauth2.HTTPClient, c.cfg.HTTPClient)
	tok, err := rp.CodeExchange[*zoidc.IDTokenClaims](vctx, code, relying, rp.WithCodeVerifier(verifier))
	if err != nil {
		return nil, classify(err)
	}
	if tok.IDTokenClaims == nil || tok.IDToken == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", ErrInvalidToken)
	}
	if maxAge != "" {
		secs, err := strconv.Atoi(maxAge)
		authTime := tok.IDTokenClaims.GetAuthTime()
		if err != nil || authTime.IsZero() || c.cfg.Now().Sub(authTime) > time.Duration(secs)*time.Second+c.cfg.ClockSkew {
			return nil, fmt.Errorf("%w: auth_time missing or older than max_age", ErrInvalidToken)
		}
	}
	out := &Tokens{
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: tok.IDToken,
		TokenType: tok.TokenType, Subject: tok.IDTokenClaims.Subject, SID: tok.IDTokenClaims.SessionID,
		Claims: map[string]any{},
	}
	for k, v := range tok.IDTokenClaims.Claims {
		out.Claims[k] = v
	}
	out.Expiry = c.expiry(tok.Token, tok.Expiry.IsZero())
	c.mergeUserinfo(vctx, relying, out)
	return out, nil
}

// mergeUserinfo adds userinfo claims that the ID token lacks (ZITADEL omits
// profile claims from ID tokens unless configured). Failures are ignored:
// the ID token alone is enough to sign in.
func (c *Client) mergeUserinfo(ctx context.Context, relying rp.RelyingParty, t *Tokens) {
	if relying.UserinfoEndpoint() == "" || t.AccessToken == "" {
		return
	}
	info, err := rp.Userinfo[*zoidc.UserInfo](ctx, t.AccessToken, "Bearer", t.Subject, relying)
	if err != nil || info == nil {
		return
	}
	raw := map[string]any{}
	if b, err := info.MarshalJSON(); err == nil {
		_ = jsonUnmarshal(b, &raw)
	}
	for k, v := range raw {
		if _, ok := t.Claims[k]; !ok {
			t.Claims[k] = v
		}
	}
}

// expiry decides when an access token expires: expires_in when sent, else
// the JWT's exp, else DefaultTokenLifetime.
func (c *Client) expiry(tok *oauth2.Token, missing bool) time.Time {
	if !missing && !tok.Expiry.IsZero() {
		return tok.Expiry
	}
	if exp, ok := jwtExpiry(tok.AccessToken); ok {
		return exp
	}
	return c.cfg.Now().Add(c.cfg.DefaultTokenLifetime)
}

// Refresh redeems a refresh token. It verifies nothing, so the caller can
// store the (possibly rotated) refresh token before anything else can fail;
// then it calls VerifyRefreshedIDToken. An empty RefreshToken or IDToken in
// the result means the provider sent none: keep the old ones.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	if _, err := c.Discover(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	refresh := c.refresh
	c.mu.Unlock()
	tok, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, refresh, refreshToken, "", "")
	if err != nil {
		return nil, classify(err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("%w: refresh response has no access_token", ErrProvider)
	}
	_, hasExpiresIn := tok.Extra("expires_in").(float64)
	out := &Tokens{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType}
	out.Expiry = c.expiry(tok.Token, !hasExpiresIn)
	if raw, ok := tok.Extra("id_token").(string); ok {
		out.IDToken = raw
	}
	return out, nil
}

// VerifyRefreshedIDToken checks an ID token from a refresh response: the
// usual checks without the nonce rule, then (OIDC Core §12.2) the same sub,
// and a nonce that is absent or equals the login nonce (ZITADEL repeats it,
// other providers omit it).
func (c *Client) VerifyRefreshedIDToken(ctx context.Context, raw, sub, nonce string) (map[string]any, error) {
	relying, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	v := *relying.IDTokenVerifier()
	v.Nonce = nil
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.HTTPClient.Timeout+time.Second)
	defer cancel()
	claims, err := rp.VerifyIDToken[*zoidc.IDTokenClaims](vctx, raw, &v)
	if err != nil {
		return nil, fmt.Errorf("%w: refreshed id_token: %w", ErrInvalidToken, err)
	}
	if claims.Subject != sub {
		return nil, ErrSubjectChanged
	}
	if claims.Nonce != "" && claims.Nonce != nonce {
		return nil, fmt.Errorf("%w: refreshed id_token has a foreign nonce", ErrSubjectChanged)
	}
	return claims.Claims, nil
}

// Revoke revokes a refresh token (RFC 7009) when the provider has a
// revocation endpoint; without one it returns nil.
func (c *Client) Revoke(ctx context.Context, refreshToken string) error {
	if refreshToken == "" {
		return nil
	}
	relying, err := c.Discover(ctx)
	if err != nil {
		return err
	}
	if relying.GetRevokeEndpoint() == "" {
		return nil
	}
	c.mu.Lock()
	refresh := c.refresh
	c.mu.Unlock()
	if err := rp.RevokeToken(ctx, &revoker{RelyingParty: refresh, endpoint: relying.GetRevokeEndpoint()}, refreshToken, "refresh_token"); err != nil {
		return classify(err)
	}
	return nil
}

type revoker struct {
	rp.RelyingParty
	endpoint string
}

func (r *revoker) GetRevokeEndpoint() string { return r.endpoint }

// maxHintURL bounds the end-session URL: beyond it (large ID tokens) the
// hint is replaced by client_id so browsers and proxies do not truncate it.
const maxHintURL = 4000

// EndSessionURL builds the provider's RP-Initiated Logout 1.0 URL for the
// browser (rp.EndSession would POST it server-side, which does not end the
// provider's browser session). It returns "" when the provider has no
// end_session_endpoint. With useHint the ID token is sent as id_token_hint
// (SPEC §6.3's one exception); otherwise, or when the URL would be too
// long, client_id identifies the app.
func (c *Client) EndSessionURL(ctx context.Context, idToken, state string, useHint bool) (string, error) {
	relying, err := c.Discover(ctx)
	if err != nil {
		return "", err
	}
	ep := relying.GetEndSessionEndpoint()
	if ep == "" {
		return "", nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", fmt.Errorf("%w: bad end_session_endpoint: %w", ErrProvider, err)
	}
	q := u.Query()
	q.Set("client_id", c.cfg.ClientID)
	q.Set("post_logout_redirect_uri", c.cfg.PostLogoutRedirectURL)
	if state != "" {
		q.Set("state", state)
	}
	if useHint && idToken != "" {
		q.Set("id_token_hint", idToken)
		u.RawQuery = q.Encode()
		if len(u.String()) <= maxHintURL {
			return u.String(), nil
		}
		q.Del("id_token_hint")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// classify maps library errors to ErrInvalidGrant or ErrProvider.
func classify(err error) error {
	var oe *zoidc.Error
	if errors.As(err, &oe) {
		if oe.ErrorType == zoidc.InvalidGrant {
			return fmt.Errorf("%w: %s", ErrInvalidGrant, oe.Description)
		}
		return fmt.Errorf("%w: %s: %s", ErrProvider, oe.ErrorType, oe.Description)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode == "invalid_grant" {
			return fmt.Errorf("%w: %s", ErrInvalidGrant, re.ErrorDescription)
		}
		return fmt.Errorf("%w: token endpoint: %d %s", ErrProvider, re.Response.StatusCode, re.ErrorCode)
	}
	if errors.Is(err, ErrProvider) || errors.Is(err, ErrInvalidGrant) {
		return err
	}
	if sentinel := verificationError(err); sentinel != nil {
		// Only the kind of failure: the library's text can quote the
		// expected nonce or token contents, which must not reach a log.
		return fmt.Errorf("%w: %w", ErrInvalidToken, sentinel)
	}
	return fmt.Errorf("%w: %w", ErrProvider, err)
}

// verificationError returns the library sentinel that err wraps, if any.
func verificationError(err error) error {
	for _, e := range []error{
		zoidc.ErrParse, zoidc.ErrIssuerInvalid, zoidc.ErrSubjectMissing, zoidc.ErrAudience, zoidc.ErrAzpMissing,
		zoidc.ErrAzpInvalid, zoidc.ErrSignatureMissing, zoidc.ErrSignatureMultiple, zoidc.ErrSignatureUnsupportedAlg,
		zoidc.ErrSignatureInvalidPayload, zoidc.ErrSignatureInvalid, zoidc.ErrExpired, zoidc.ErrIatMissing,
		zoidc.ErrIatInFuture, zoidc.ErrIatToOld, zoidc.ErrNonceInvalid, zoidc.ErrAcrInvalid, zoidc.ErrAuthTimeNotPresent,
		zoidc.ErrAuthTimeToOld, zoidc.ErrAtHash, rp.ErrMissingIDToken,
	} {
		if errors.Is(err, e) {
			return e
		}
	}
	return nil
}
