// Package config loads, defaults and validates the BFF's YAML configuration.
//
// It is the only package that reads files or the environment. Load reports
// every invalid setting at once, each error naming its key (for example
// "apps[0].oidc.clientID: required"), so an operator fixes a file in one pass.
// Secrets (client secrets, session keys, Redis passwords) may come from the
// environment or from files; no Problems entry ever contains one, and
// Redis.RedactedURL is the form of the Redis URL to print.
//
// Precedence, highest first: environment variables (BFF_LISTEN,
// BFF_ADMIN_LISTEN, BFF_REDIS_URL, BFF_SESSION_ENCRYPTION_KEYS,
// BFF_APP_<NAME>_CLIENT_SECRET), *File settings, the YAML file, defaults.
package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DefaultCSP is the Content-Security-Policy of pages the BFF serves.
const DefaultCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// Config is the whole BFF configuration. Zero values are replaced by the
// documented defaults in Load.
type Config struct {
	// Listen is the public listen address (host:port, numeric port).
	// Override with BFF_LISTEN. Default ":8080".
	Listen string `yaml:"listen"`
	// AdminListen serves /healthz, /readyz and /metrics; keep it private.
	// Default "127.0.0.1:9090". Set to "off" to disable. Must differ from
	// Listen. Override with BFF_ADMIN_LISTEN.
	AdminListen string `yaml:"adminListen"`
	// AdminToken, when set, is required as "Authorization: Bearer <token>"
	// on the admin session API (/admin/sessions). Required when adminListen
	// is not a loopback address. Override with BFF_ADMIN_TOKEN.
	AdminToken string `yaml:"adminToken"`
	// TrustedProxies are CIDRs (or single IPs) whose X-Forwarded-For /
	// X-Forwarded-Proto / X-Forwarded-Host headers are believed. Default:
	// none (headers from clients are replaced). IPv4-mapped IPv6 entries
	// (::ffff:10.0.0.0/104) are taken as their IPv4 form.
	TrustedProxies []string `yaml:"trustedProxies"`
	// Log sets the log format and level.
	Log Log `yaml:"log"`
	// Session configures the session store and lifetimes.
	Session Session `yaml:"session"`
	// Limits configures request limits.
	Limits Limits `yaml:"limits"`
	// Apps are the applications this BFF serves; at least one.
	Apps []App `yaml:"apps"`

	// trustedNets is TrustedProxies parsed.
	trustedNets []netPrefix
}

// Log configures logging.
type Log struct {
	// Format is "json" (default) or "console".
	Format string `yaml:"format"`
	// Level is a zerolog level: debug, info (default), warn, error.
	Level string `yaml:"level"`
}

// Session configures the session store, lifetimes and encryption at rest.
type Session struct {
	// Store is "memory" (default, one process) or "redis" (many replicas).
	Store string `yaml:"store"`
	// Redis is used when Store is "redis".
	Redis Redis `yaml:"redis"`
	// IdleTimeout ends a session nobody used for this long. Default 8h.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// AbsoluteLifetime ends every session this long after login. Default 24h.
	AbsoluteLifetime time.Duration `yaml:"absoluteLifetime"`
	// EncryptionKeys is the token-encryption key ring: each entry is 32 bytes,
	// base64 (standard or URL alphabet). The first key encrypts; all decrypt,
	// so a new key is added in front and the old one removed after the
	// absolute lifetime. Override with BFF_SESSION_ENCRYPTION_KEYS
	// (comma-separated, replaces both settings) or EncryptionKeysFile (one
	// key per line or comma-separated; not together with EncryptionKeys).
	// Required for the redis store; the memory store generates a key per
	// process when none is given.
	EncryptionKeys     []string `yaml:"encryptionKeys"`
	EncryptionKeysFile string   `yaml:"encryptionKeysFile"`
	// LoginTimeout is how long a login transaction (state, nonce, PKCE
	// verifier) stays valid. Default 10m.
	LoginTimeout time.Duration `yaml:"loginTimeout"`
	// MaxPendingLogins caps concurrent login transactions per browser.
	// Default 5; the oldest is dropped beyond it.
	MaxPendingLogins int `yaml:"maxPendingLogins"`

	keys [][]byte
}

// Redis configures the Redis session store.
type Redis struct {
	// URL is redis://[:password@]host:port/db or rediss:// for TLS.
	// Override with BFF_REDIS_URL. Default "redis://127.0.0.1:6379/0".
	URL string `yaml:"url"`
	// KeyPrefix namespaces every key. Default "bff:".
	KeyPrefix string `yaml:"keyPrefix"`
	// PoolSize is the maximum number of connections. Default 32.
	PoolSize int `yaml:"poolSize"`
	// DialTimeout, ReadTimeout and WriteTimeout bound each Redis call.
	// Defaults 500ms, 500ms, 500ms.
	DialTimeout  time.Duration `yaml:"dialTimeout"`
	ReadTimeout  time.Duration `yaml:"readTimeout"`
	WriteTimeout time.Duration `yaml:"writeTimeout"`
}

// Limits bounds what a client may send and how long outbound calls take.
type Limits struct {
	// MaxHeaderBytes bounds request headers. Default 32 KiB.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// MaxBodyBytes bounds request bodies the BFF reads or proxies. Default 10 MiB.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// LoginRatePerMinute bounds /auth/login and /auth/callback per client IP.
	// Default 60.
	LoginRatePerMinute int `yaml:"loginRatePerMinute"`
	// ProviderTimeout bounds every call to an OpenID Provider. Default 10s.
	ProviderTimeout time.Duration `yaml:"providerTimeout"`
	// UpstreamTimeout bounds waiting for upstream response headers. Default 30s.
	UpstreamTimeout time.Duration `yaml:"upstreamTimeout"`
	// ShutdownTimeout bounds draining in-flight requests. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// BodyTimeout bounds reading a request body sent to an API (slow-body
	// attacks hold connections open). /auth endpoints get at most 10s.
	// Default 60s.
	BodyTimeout time.Duration `yaml:"bodyTimeout"`
}

// App is one application served by the BFF: its OIDC client, cookie,
// return-to rules, SPA and APIs.
type App struct {
	// Name identifies the app in logs, metrics and environment overrides:
	// required, unique, letters, digits, '-', '_' or '.' (at most 63), and
	// no two names may map to the same BFF_APP_<NAME>_CLIENT_SECRET.
	Name string `yaml:"name"`
	// URL is the app's public origin and path prefix, e.g.
	// "https://app.example.com" or "https://example.com/shop" (a clean path,
	// no escapes). Requests are matched to an app by host and the longest
	// path prefix. Plain http only on a loopback host.
	URL string `yaml:"url"`
	// Hosts are extra host names (host or host:port) matched to this app.
	Hosts []string `yaml:"hosts"`
	// OIDC is the app's client at its OpenID Provider.
	OIDC OIDC `yaml:"oidc"`
	// Cookie configures the session cookie.
	Cookie Cookie `yaml:"cookie"`
	// ReturnTo limits where the browser may be sent after login and logout.
	ReturnTo ReturnTo `yaml:"returnTo"`
	// CORS lists exact origins allowed to call this app with credentials.
	CORS CORS `yaml:"cors"`
	// CSRFHeader is the header every /auth/me, /auth/logout and API call
	// must carry with value "1". Default "X-CSRF".
	CSRFHeader string `yaml:"csrfHeader"`
	// SPA says where the app's pages come from.
	SPA SPA `yaml:"spa"`
	// APIs maps path prefixes to upstreams.
	APIs []API `yaml:"apis"`
	// Me configures what /auth/me returns.
	Me Me `yaml:"me"`

	url *url.URL
}

// OIDC configures the app's OpenID Connect client.
type OIDC struct {
	// Issuer must equal the provider's discovery "issuer" byte for byte.
	Issuer string `yaml:"issuer"`
	// ClientID is required.
	ClientID string `yaml:"clientID"`
	// ClientSecret, or ClientSecretFile (not both), or the environment
	// variable BFF_APP_<NAME>_CLIENT_SECRET (NAME upper-cased, '-', '.' as
	// '_'), which overrides both.
	ClientSecret     string `yaml:"clientSecret"`
	ClientSecretFile string `yaml:"clientSecretFile"`
	// AuthMethod is "client_secret_basic" (default) or "client_secret_post".
	AuthMethod string `yaml:"authMethod"`
	// Scopes requested at login. Default [openid profile email offline_access].
	Scopes []string `yaml:"scopes"`
	// RedirectURL is the callback registered at the provider.
	// Default <url>/auth/callback; it must be that URL (same scheme and host).
	RedirectURL string `yaml:"redirectURL"`
	// PostLogoutRedirectURL is where the provider sends the browser after
	// logout. Default <url>/.
	PostLogoutRedirectURL string `yaml:"postLogoutRedirectURL"`
	// IDTokenHint sends the ID token as id_token_hint on the end-session
	// redirect (default true). When false, client_id is sent instead; some
	// providers then ask the user to confirm the logout.
	IDTokenHint *bool `yaml:"idTokenHint"`
	// RefreshSkew refreshes access tokens expiring within it. Default 60s.
	RefreshSkew time.Duration `yaml:"refreshSkew"`
	// DefaultTokenLifetime is assumed when the provider sends no expires_in
	// and the access token is not a JWT with exp. Default 5m.
	DefaultTokenLifetime time.Duration `yaml:"defaultTokenLifetime"`
	// ClockSkew is the leeway for iat/exp checks on provider tokens. Default 30s.
	ClockSkew time.Duration `yaml:"clockSkew"`
	// ResponseMode is "query" (default) or "form_post" (OAuth 2.0 Form Post
	// Response Mode): the provider then POSTs the code cross-site, so the
	// login-transaction cookie is sent with SameSite=None (which requires
	// Secure); the session cookie keeps its own SameSite.
	ResponseMode string `yaml:"responseMode"`
}

// Cookie configures the session cookie.
type Cookie struct {
	// Name defaults to "__Host-bff", "__Secure-bff" when Domain is set (a
	// __Host- cookie cannot have one), or "bff" when Secure is false; with
	// several apps "-<app name>" is appended.
	Name string `yaml:"name"`
	// Domain is empty (host-only) unless SSR apps on sibling hosts share the
	// session; a "__Host-" name must have no domain.
	Domain string `yaml:"domain"`
	// SameSite is "lax" (default) or "strict", in any case; stored lower case.
	// "none" is refused: it would send the session cross-site.
	SameSite string `yaml:"sameSite"`
	// Secure defaults to true. false is allowed only when the app URL is
	// plain HTTP on a loopback host (local development).
	Secure *bool `yaml:"secure"`
}

// ReturnTo limits post-login and post-logout destinations.
type ReturnTo struct {
	// AllowedOrigins are exact origins (scheme://host[:port]) allowed as
	// absolute returnTo targets besides the app's own origin. They are
	// normalised on load as browsers serialise an Origin (RFC 6454 §6.2):
	// scheme and host lower-cased, a default port and a trailing "/" dropped,
	// so "HTTPS://App.Example.com:443/" becomes "https://app.example.com".
	AllowedOrigins []string `yaml:"allowedOrigins"`
}

// CORS configures cross-origin access with credentials.
type CORS struct {
	// AllowedOrigins are exact origins; no wildcards. Normalised on load like
	// ReturnTo.AllowedOrigins.
	AllowedOrigins []string `yaml:"allowedOrigins"`
}

// SPA says where the app's static pages come from. Exactly one of Dir or
// Upstream, or neither (the BFF then serves only /auth and the APIs).
type SPA struct {
	// Dir is a directory served with index.html as fallback for client routes.
	Dir string `yaml:"dir"`
	// Upstream is a URL (e.g. a dev server) that pages are proxied to.
	Upstream string `yaml:"upstream"`
	// ContentSecurityPolicy sent with every page the BFF serves. Default:
	// "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;
	// connect-src 'self'; object-src 'none'; frame-ancestors 'none';
	// base-uri 'self'; form-action 'self'".
	ContentSecurityPolicy string `yaml:"contentSecurityPolicy"`
}

// API maps a path prefix of the app to an upstream.
type API struct {
	// Prefix is a path under the app, e.g. "/api/". Must start and end with "/".
	Prefix string `yaml:"prefix"`
	// Upstream is the base URL requests are sent to; the part of the path
	// after Prefix is appended to its path (a clean path, no query).
	Upstream string `yaml:"upstream"`
	// Methods allowed (upper case); empty allows all.
	Methods []string `yaml:"methods"`
	// RequireToken, default true: no session gives 401. When false, calls
	// without a session are proxied anonymously.
	RequireToken *bool `yaml:"requireToken"`
}

// Me configures the /auth/me response.
type Me struct {
	// Claims copied from the ID token into "user". Default
	// [sub name given_name family_name email email_verified preferred_username].
	// "roles" is always added from ZITADEL's project roles claim when present.
	Claims []string `yaml:"claims"`
}

// ParsedURL returns the app's URL parsed during validation.
func (a *App) ParsedURL() *url.URL { return a.url }

// CookieSecure reports whether the session cookie carries Secure.
func (c Cookie) CookieSecure() bool { return c.Secure == nil || *c.Secure }

// RequiresToken reports whether the API needs a session.
func (a API) RequiresToken() bool { return a.RequireToken == nil || *a.RequireToken }

// SendIDTokenHint reports whether end-session redirects carry id_token_hint.
func (o OIDC) SendIDTokenHint() bool { return o.IDTokenHint == nil || *o.IDTokenHint }

// Keys returns the decoded encryption key ring (may be empty for memory).
func (s Session) Keys() [][]byte { return s.keys }

// RedactedURL is URL with any password replaced by "xxxxx", for logs and
// summaries.
func (r Redis) RedactedURL() string {
	u, err := url.Parse(r.URL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

type netPrefix netip.Prefix

// TrustsProxy reports whether addr (an IP, no port) is a trusted proxy. An
// IPv4-mapped IPv6 address is compared as IPv4, and a zone is ignored.
func (c *Config) TrustsProxy(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, n := range c.trustedNets {
		if netip.Prefix(n).Contains(addr) {
			return true
		}
	}
	return false
}

// CheckFiles reports settings that name files or directories that are not
// there (spa.dir without an index.html). Parse does not look at the file
// system; serve and config check call this.
func (c *Config) CheckFiles() Problems {
	var p Problems
	for i, a := range c.Apps {
		if a.SPA.Dir == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(a.SPA.Dir, "index.html")); err != nil || st.IsDir() {
			p = append(p, fmt.Sprintf("apps[%d].spa.dir: no index.html in %q", i, a.SPA.Dir))
		}
	}
	return p
}
