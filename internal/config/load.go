package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problems lists every invalid setting found, each naming its key.
type Problems []string

func (p Problems) Error() string {
	return "invalid configuration:\n  - " + strings.Join(p, "\n  - ")
}

// Source is where Load reads from: the environment and files. Tests and
// fuzzers pass fakes.
type Source struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// Load reads the YAML file at path, applies environment overrides and
// defaults, and validates the result. Every problem is reported at once.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, Source{Getenv: getenv, ReadFile: os.ReadFile})
}

// Parse is Load for bytes already read.
func Parse(data []byte, src Source) (*Config, error) {
	if src.Getenv == nil {
		src.Getenv = func(string) string { return "" }
	}
	if src.ReadFile == nil {
		src.ReadFile = func(name string) ([]byte, error) { return nil, fmt.Errorf("no file %q", name) }
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, Problems(te.Errors)
		}
		return nil, Problems{err.Error()}
	}
	c.applyEnv(src.Getenv)
	var p Problems
	c.loadSecretFiles(src.ReadFile, &p)
	c.setDefaults()
	c.validate(&p)
	if len(p) > 0 {
		return nil, p
	}
	return &c, nil
}

// DefaultCSP is the Content-Security-Policy of pages the BFF serves.
const DefaultCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// EnvName is the environment variable that overrides app name's client secret.
func EnvName(app string) string {
	r := strings.NewReplacer("-", "_", ".", "_", " ", "_")
	return "BFF_APP_" + strings.ToUpper(r.Replace(app)) + "_CLIENT_SECRET"
}

func (c *Config) applyEnv(getenv func(string) string) {
	if v := getenv("BFF_LISTEN"); v != "" {
		c.Listen = v
	}
	if v := getenv("BFF_ADMIN_LISTEN"); v != "" {
		c.AdminListen = v
	}
	if v := getenv("BFF_REDIS_URL"); v != "" {
		c.Session.Redis.URL = v
	}
	if v := getenv("BFF_SESSION_ENCRYPTION_KEYS"); v != "" {
		c.Session.EncryptionKeys = splitList(v)
	}
	for i := range c.Apps {
		if v := getenv(EnvName(c.Apps[i].Name)); v != "" {
			c.Apps[i].OIDC.ClientSecret = v
		}
	}
}

func (c *Config) loadSecretFiles(read func(string) ([]byte, error), p *Problems) {
	if f := c.Session.EncryptionKeysFile; f != "" {
		b, err := read(f)
		if err != nil {
			p.add("session.encryptionKeysFile", "cannot read: %v", err)
		} else {
			c.Session.EncryptionKeys = append(c.Session.EncryptionKeys, splitList(string(b))...)
		}
	}
	for i := range c.Apps {
		o := &c.Apps[i].OIDC
		if o.ClientSecretFile == "" {
			continue
		}
		if o.ClientSecret != "" {
			p.add(fmt.Sprintf("apps[%d].oidc.clientSecretFile", i), "set together with clientSecret; use one")
			continue
		}
		b, err := read(o.ClientSecretFile)
		if err != nil {
			p.add(fmt.Sprintf("apps[%d].oidc.clientSecretFile", i), "cannot read: %v", err)
			continue
		}
		o.ClientSecret = strings.TrimSpace(string(b))
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *Config) setDefaults() {
	def(&c.Listen, ":8080")
	def(&c.AdminListen, "127.0.0.1:9090")
	def(&c.Log.Format, "json")
	def(&c.Log.Level, "info")
	s := &c.Session
	def(&s.Store, "memory")
	def(&s.Redis.URL, "redis://127.0.0.1:6379/0")
	def(&s.Redis.KeyPrefix, "bff:")
	def(&s.Redis.PoolSize, 32)
	def(&s.Redis.DialTimeout, 500*time.Millisecond)
	def(&s.Redis.ReadTimeout, 500*time.Millisecond)
	def(&s.Redis.WriteTimeout, 500*time.Millisecond)
	def(&s.IdleTimeout, 8*time.Hour)
	def(&s.AbsoluteLifetime, 24*time.Hour)
	def(&s.LoginTimeout, 10*time.Minute)
	def(&s.MaxPendingLogins, 5)
	l := &c.Limits
	def(&l.MaxHeaderBytes, 32<<10)
	def(&l.MaxBodyBytes, 10<<20)
	def(&l.LoginRatePerMinute, 60)
	def(&l.ProviderTimeout, 10*time.Second)
	def(&l.UpstreamTimeout, 30*time.Second)
	def(&l.ShutdownTimeout, 15*time.Second)
	for i := range c.Apps {
		a := &c.Apps[i]
		u, _ := url.Parse(a.URL)
		base := strings.TrimSuffix(a.URL, "/")
		def(&a.OIDC.AuthMethod, "client_secret_basic")
		if len(a.OIDC.Scopes) == 0 {
			a.OIDC.Scopes = []string{"openid", "profile", "email", "offline_access"}
		}
		def(&a.OIDC.RedirectURL, base+"/auth/callback")
		def(&a.OIDC.PostLogoutRedirectURL, base+"/")
		def(&a.OIDC.RefreshSkew, 60*time.Second)
		def(&a.OIDC.DefaultTokenLifetime, 5*time.Minute)
		def(&a.OIDC.ClockSkew, 30*time.Second)
		if a.Cookie.Name == "" {
			if a.Cookie.CookieSecure() {
				a.Cookie.Name = "__Host-bff"
			} else {
				a.Cookie.Name = "bff"
			}
			if u != nil && len(c.Apps) > 1 {
				a.Cookie.Name += "-" + a.Name
			}
		}
		def(&a.Cookie.SameSite, "lax")
		def(&a.CSRFHeader, "X-CSRF")
		def(&a.SPA.ContentSecurityPolicy, DefaultCSP)
		if len(a.Me.Claims) == 0 {
			a.Me.Claims = []string{"sub", "name", "given_name", "family_name", "email", "email_verified", "preferred_username"}
		}
	}
}

func def[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func (p *Problems) add(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

func (c *Config) validate(p *Problems) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		p.add("listen", "not host:port: %v", err)
	}
	if c.AdminListen != "off" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			p.add("adminListen", "not host:port or \"off\": %v", err)
		}
	}
	for i, cidr := range c.TrustedProxies {
		pfx, err := netip.ParsePrefix(cidr)
		if err != nil {
			if a, aerr := netip.ParseAddr(cidr); aerr == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			} else {
				p.add(fmt.Sprintf("trustedProxies[%d]", i), "not a CIDR or IP: %q", cidr)
				continue
			}
		}
		c.trustedNets = append(c.trustedNets, netPrefix(pfx.Masked()))
	}
	if !slices.Contains([]string{"json", "console"}, c.Log.Format) {
		p.add("log.format", "must be json or console, got %q", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	c.validateSession(p)
	for name, v := range map[string]time.Duration{
		"limits.providerTimeout": c.Limits.ProviderTimeout, "limits.upstreamTimeout": c.Limits.UpstreamTimeout,
		"limits.shutdownTimeout": c.Limits.ShutdownTimeout,
	} {
		if v < 0 {
			p.add(name, "must be positive")
		}
	}
	if c.Limits.MaxHeaderBytes < 1024 {
		p.add("limits.maxHeaderBytes", "must be at least 1024")
	}
	if c.Limits.MaxBodyBytes < 0 {
		p.add("limits.maxBodyBytes", "must be positive")
	}
	if c.Limits.LoginRatePerMinute < 0 {
		p.add("limits.loginRatePerMinute", "must be positive")
	}
	if len(c.Apps) == 0 {
		p.add("apps", "at least one app is required")
	}
	names := map[string]bool{}
	routes := map[string]string{}
	for i := range c.Apps {
		a := &c.Apps[i]
		key := fmt.Sprintf("apps[%d]", i)
		if a.Name == "" {
			p.add(key+".name", "required")
		} else if names[a.Name] {
			p.add(key+".name", "duplicate app name %q", a.Name)
		}
		names[a.Name] = true
		a.validate(key, p)
		if a.url != nil {
			for _, h := range append([]string{a.url.Host}, a.Hosts...) {
				r := strings.ToLower(h) + strings.TrimSuffix(a.url.Path, "/")
				if other, dup := routes[r]; dup {
					p.add(key+".url", "host and path %q already used by app %q", r, other)
				}
				routes[r] = a.Name
			}
		}
	}
}

func (c *Config) validateSession(p *Problems) {
	s := &c.Session
	switch s.Store {
	case "memory":
	case "redis":
		u, err := url.Parse(s.Redis.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.add("session.redis.url", "must be redis://host:port/db or rediss://…")
		}
		if s.Redis.PoolSize < 1 {
			p.add("session.redis.poolSize", "must be at least 1")
		}
		if len(s.EncryptionKeys) == 0 {
			p.add("session.encryptionKeys", "required with the redis store (32-byte keys, base64; or BFF_SESSION_ENCRYPTION_KEYS)")
		}
	default:
		p.add("session.store", "must be memory or redis, got %q", s.Store)
	}
	if s.IdleTimeout < time.Minute {
		p.add("session.idleTimeout", "must be at least 1m")
	}
	if s.AbsoluteLifetime < s.IdleTimeout {
		p.add("session.absoluteLifetime", "must not be shorter than idleTimeout")
	}
	if s.LoginTimeout < 30*time.Second || s.LoginTimeout > time.Hour {
		p.add("session.loginTimeout", "must be between 30s and 1h")
	}
	if s.MaxPendingLogins < 1 || s.MaxPendingLogins > 20 {
		p.add("session.maxPendingLogins", "must be between 1 and 20")
	}
	for i, k := range s.EncryptionKeys {
		b, err := decodeKey(k)
		if err != nil {
			// The key itself is a secret: never echo it.
			p.add(fmt.Sprintf("session.encryptionKeys[%d]", i), "%v", err)
			continue
		}
		s.keys = append(s.keys, b)
	}
}

func decodeKey(k string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(k); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("must decode to 32 bytes, got %d", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func (a *App) validate(key string, p *Problems) {
	u, err := url.Parse(a.URL)
	switch {
	case a.URL == "":
		p.add(key+".url", "required (the app's public origin, e.g. https://app.example.com)")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		p.add(key+".url", "must be an absolute http(s) URL without query, fragment or userinfo")
	default:
		a.url = u
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			p.add(key+".url", "plain http is allowed only on a loopback host (localhost, 127.0.0.1, ::1)")
		}
	}
	o := &a.OIDC
	if o.Issuer == "" {
		p.add(key+".oidc.issuer", "required")
	} else if iu, err := url.Parse(o.Issuer); err != nil || (iu.Scheme != "https" && !(iu.Scheme == "http" && isLoopback(iu.Hostname()))) || iu.Host == "" {
		p.add(key+".oidc.issuer", "must be an https URL (http only on loopback)")
	}
	if o.ClientID == "" {
		p.add(key+".oidc.clientID", "required")
	}
	if o.ClientSecret == "" {
		p.add(key+".oidc.clientSecret", "required (or clientSecretFile, or %s)", EnvName(a.Name))
	}
	if !slices.Contains([]string{"client_secret_basic", "client_secret_post"}, o.AuthMethod) {
		p.add(key+".oidc.authMethod", "must be client_secret_basic or client_secret_post, got %q", o.AuthMethod)
	}
	if !slices.Contains(o.Scopes, "openid") {
		p.add(key+".oidc.scopes", "must contain openid")
	}
	for _, f := range []struct{ name, v string }{{"redirectURL", o.RedirectURL}, {"postLogoutRedirectURL", o.PostLogoutRedirectURL}} {
		if ru, err := url.Parse(f.v); err != nil || !ru.IsAbs() || ru.Host == "" {
			p.add(key+".oidc."+f.name, "must be an absolute URL")
		}
	}
	if a.url != nil {
		if ru, err := url.Parse(o.RedirectURL); err == nil && (ru.Host != a.url.Host || ru.Path != strings.TrimSuffix(a.url.Path, "/")+"/auth/callback") {
			p.add(key+".oidc.redirectURL", "must be %s/auth/callback (the BFF serves the callback)", strings.TrimSuffix(a.URL, "/"))
		}
	}
	if o.RefreshSkew < 0 || o.RefreshSkew > time.Hour {
		p.add(key+".oidc.refreshSkew", "must be between 0 and 1h")
	}
	if o.DefaultTokenLifetime < 10*time.Second {
		p.add(key+".oidc.defaultTokenLifetime", "must be at least 10s")
	}
	if o.ClockSkew < 0 || o.ClockSkew > 5*time.Minute {
		p.add(key+".oidc.clockSkew", "must be between 0 and 5m")
	}
	a.validateCookie(key, p)
	for i, o := range a.ReturnTo.AllowedOrigins {
		if !isOrigin(o) {
			p.add(fmt.Sprintf("%s.returnTo.allowedOrigins[%d]", key, i), "must be an exact origin like https://app.example.com, got %q", o)
		}
	}
	for i, o := range a.CORS.AllowedOrigins {
		if !isOrigin(o) {
			p.add(fmt.Sprintf("%s.cors.allowedOrigins[%d]", key, i), "must be an exact origin like https://app.example.com (no wildcard), got %q", o)
		}
	}
	if !validHeaderName(a.CSRFHeader) {
		p.add(key+".csrfHeader", "not a valid header name")
	}
	if a.SPA.Dir != "" && a.SPA.Upstream != "" {
		p.add(key+".spa", "set dir or upstream, not both")
	}
	if a.SPA.Upstream != "" {
		if su, err := url.Parse(a.SPA.Upstream); err != nil || (su.Scheme != "http" && su.Scheme != "https") || su.Host == "" {
			p.add(key+".spa.upstream", "must be an absolute http(s) URL")
		}
	}
	prefixes := map[string]bool{}
	for i, api := range a.APIs {
		k := fmt.Sprintf("%s.apis[%d]", key, i)
		if !strings.HasPrefix(api.Prefix, "/") || !strings.HasSuffix(api.Prefix, "/") || len(api.Prefix) < 3 ||
			strings.Contains(api.Prefix, "//") || strings.Contains(api.Prefix, "/./") || strings.Contains(api.Prefix, "/../") || strings.ContainsAny(api.Prefix, "%\\?#") {
			p.add(k+".prefix", "must be a clean path like /api/ (start and end with /)")
		} else if strings.HasPrefix(api.Prefix, "/auth/") {
			p.add(k+".prefix", "must not be under /auth/")
		} else if prefixes[api.Prefix] {
			p.add(k+".prefix", "duplicate prefix %q", api.Prefix)
		}
		prefixes[api.Prefix] = true
		if uu, err := url.Parse(api.Upstream); err != nil || (uu.Scheme != "http" && uu.Scheme != "https") || uu.Host == "" || uu.RawQuery != "" || uu.User != nil {
			p.add(k+".upstream", "must be an absolute http(s) URL without query or userinfo")
		}
		for j, m := range api.Methods {
			if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, m) {
				p.add(fmt.Sprintf("%s.methods[%d]", k, j), "unknown method %q", m)
			}
		}
	}
}

func (a *App) validateCookie(key string, p *Problems) {
	c := a.Cookie
	if !validCookieName(c.Name) {
		p.add(key+".cookie.name", "not a valid cookie name")
	}
	if strings.HasPrefix(c.Name, "__Host-") {
		if c.Domain != "" {
			p.add(key+".cookie.domain", "must be empty with a __Host- cookie name (RFC 6265bis §4.1.3.2)")
		}
		if !c.CookieSecure() {
			p.add(key+".cookie.secure", "a __Host- cookie must be Secure")
		}
	}
	if strings.HasPrefix(c.Name, "__Secure-") && !c.CookieSecure() {
		p.add(key+".cookie.secure", "a __Secure- cookie must be Secure")
	}
	if !c.CookieSecure() && (a.url == nil || a.url.Scheme != "http" || !isLoopback(a.url.Hostname())) {
		p.add(key+".cookie.secure", "false is allowed only for a plain-http loopback app URL (local development)")
	}
	if c.CookieSecure() && a.url != nil && a.url.Scheme == "http" && !isLoopback(a.url.Hostname()) {
		p.add(key+".cookie.secure", "a Secure cookie is never sent over plain http")
	}
	if !slices.Contains([]string{"lax", "strict"}, strings.ToLower(c.SameSite)) {
		p.add(key+".cookie.sameSite", "must be lax or strict (none would send the session cross-site)")
	}
	if c.Domain != "" && a.url != nil {
		d := strings.TrimPrefix(strings.ToLower(c.Domain), ".")
		h := strings.ToLower(a.url.Hostname())
		if h != d && !strings.HasSuffix(h, "."+d) {
			p.add(key+".cookie.domain", "%q does not contain the app host %q", c.Domain, h)
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && !strings.Contains(s, "*") &&
		strings.ToLower(s) == s
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return false
		}
	}
	return true
}

type netPrefix netip.Prefix

// TrustsProxy reports whether addr (an IP, no port) is a trusted proxy.
func (c *Config) TrustsProxy(addr netip.Addr) bool {
	for _, n := range c.trustedNets {
		if netip.Prefix(n).Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}
