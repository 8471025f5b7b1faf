package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

func (a *App) validate(key string, p *problems) {
	u, err := url.Parse(a.URL)
	switch {
	case a.URL == "":
		p.add(key+".url", "required (the app's public origin, e.g. https://app.example.com)")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil:
		p.add(key+".url", "must be an absolute http(s) URL without query, fragment or userinfo")
	case !cleanPath(u):
		p.add(key+".url", "the path must be clean: no '//', '.', '..' segment or escapes")
	default:
		a.url = u
		if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			p.add(key+".url", "plain http is allowed only on a loopback host (localhost, 127.0.0.1, ::1)")
		}
	}
	for i, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, "/\\@?#*% ") {
			p.add(fmt.Sprintf("%s.hosts[%d]", key, i), "must be host or host:port, got %q", h)
		}
	}
	a.validateOIDC(key, p)
	a.validateCookie(key, p)
	for i, o := range a.ReturnTo.AllowedOrigins {
		if n, ok := normalizeOrigin(o); ok {
			a.ReturnTo.AllowedOrigins[i] = n
		} else {
			p.add(fmt.Sprintf("%s.returnTo.allowedOrigins[%d]", key, i), "must be an exact origin like https://app.example.com, got %q", o)
		}
	}
	for i, o := range a.CORS.AllowedOrigins {
		if n, ok := normalizeOrigin(o); ok {
			a.CORS.AllowedOrigins[i] = n
		} else {
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
		if su, err := url.Parse(a.SPA.Upstream); err != nil || (su.Scheme != "http" && su.Scheme != "https") || su.Host == "" || su.User != nil {
			p.add(key+".spa.upstream", "must be an absolute http(s) URL without userinfo")
		}
	}
	a.validateAPIs(key, p)
}

func (a *App) validateOIDC(key string, p *problems) {
	o := &a.OIDC
	if o.Issuer == "" {
		p.add(key+".oidc.issuer", "required")
	} else if iu, err := url.Parse(o.Issuer); err != nil || (iu.Scheme != "https" && !(iu.Scheme == "http" && isLoopback(iu.Hostname()))) || iu.Host == "" || iu.User != nil {
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
		if ru, err := url.Parse(f.v); err != nil || (ru.Scheme != "https" && ru.Scheme != "http") || ru.Host == "" || ru.User != nil {
			p.add(key+".oidc."+f.name, "must be an absolute http(s) URL")
		}
	}
	if a.url != nil {
		if ru, err := url.Parse(o.RedirectURL); err == nil && (ru.Scheme != a.url.Scheme || !strings.EqualFold(ru.Host, a.url.Host) ||
			ru.Path != strings.TrimSuffix(a.url.Path, "/")+"/auth/callback") {
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
	switch o.ResponseMode {
	case "query":
	case "form_post":
		if !a.Cookie.CookieSecure() {
			p.add(key+".oidc.responseMode", "form_post needs Secure cookies (the login cookie must be SameSite=None)")
		}
	default:
		p.add(key+".oidc.responseMode", "must be query or form_post")
	}
}

func (a *App) validateAPIs(key string, p *problems) {
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
		if uu, err := url.Parse(api.Upstream); err != nil || (uu.Scheme != "http" && uu.Scheme != "https") || uu.Host == "" ||
			uu.RawQuery != "" || uu.ForceQuery || uu.Fragment != "" || uu.User != nil {
			p.add(k+".upstream", "must be an absolute http(s) URL without query, fragment or userinfo")
		} else if !cleanPath(uu) {
			p.add(k+".upstream", "the path must be clean: no '//', '.', '..' segment or escapes")
		}
		for j, m := range api.Methods {
			if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, m) {
				p.add(fmt.Sprintf("%s.methods[%d]", k, j), "unknown method %q (upper case: GET, POST, …)", m)
			}
		}
	}
}

func (a *App) validateCookie(key string, p *problems) {
	c := a.Cookie
	if !validCookieName(c.Name) {
		p.add(key+".cookie.name", "not a valid cookie name")
	}
	if strings.HasPrefix(strings.ToLower(c.Name), "__host-") {
		if c.Domain != "" {
			p.add(key+".cookie.domain", "must be empty with a __Host- cookie name (RFC 6265bis §4.1.3.2)")
		}
		if !c.CookieSecure() {
			p.add(key+".cookie.secure", "a __Host- cookie must be Secure")
		}
	}
	if strings.HasPrefix(strings.ToLower(c.Name), "__secure-") && !c.CookieSecure() {
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
		if d == "" || h != d && !strings.HasSuffix(h, "."+d) {
			p.add(key+".cookie.domain", "%q does not contain the app host %q", c.Domain, h)
		}
	}
}

// cleanPath reports whether u's path is already in the form path.Clean
// gives (a trailing slash allowed) and has no percent-escapes.
func cleanPath(u *url.URL) bool {
	if u.RawPath != "" || strings.Contains(u.Path, "%") || strings.Contains(u.Path, "\\") {
		return false
	}
	if u.Path == "" || u.Path == "/" {
		return true
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(u.Path[1:], "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalizeOrigin returns s as browsers serialize an Origin (RFC 6454 §6.2):
// scheme and host in lower case, no default port, no trailing slash. So
// "HTTPS://App.Example.com:443/" is accepted as "https://app.example.com".
// Anything with a path, query, fragment, userinfo or wildcard is refused,
// as is a non-ASCII host (write its xn-- form, as browsers send it).
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		strings.ContainsAny(s, "*%") {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || !validHost(host) {
		return "", false
	}
	if u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, true
}

func validHost(h string) bool {
	for _, r := range h {
		if !(r == '-' || r == '.' || r == ':' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
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
