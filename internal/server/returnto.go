package server

import (
	"net/url"
	"slices"
	"strings"
)

// maxReturnTo bounds returnTo; longer values fall back to the app root.
const maxReturnTo = 2048

// safeReturnTo returns a redirect target that cannot leave the app's origin
// or its allowlist (SPEC §6.5, OWASP Unvalidated Redirects Cheat Sheet).
// Accepted: a path under the app's path prefix ("/orders?id=1#x"), or an
// absolute http(s) URL whose exact origin is the app's or allow-listed.
// Everything else — protocol-relative "//host", backslashes (browsers read
// "/\host" as "//host"), control characters (CR/LF, tab: browsers strip
// them), userinfo, other schemes (javascript:, data:), encoded slashes that
// decode to "//" — yields the app root. The result is re-serialised from
// the parsed URL so that what is checked is what is sent.
func (a *app) safeReturnTo(raw string) string {
	root := a.path("/")
	if raw == "" || len(raw) > maxReturnTo {
		return root
	}
	for _, c := range raw {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return root
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil {
		return root
	}
	if u.Scheme == "" && u.Host == "" {
		if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
			return root
		}
		p := u.Path
		// A path that decodes to "//x" or "/\x" is a host to some parsers.
		if strings.HasPrefix(p, "//") || strings.Contains(p, "\\") || !pathUnder(p, a.pathPrefix) && p != a.pathPrefix+"/" {
			return root
		}
		for seg := range strings.SplitSeq(p, "/") {
			if seg == ".." || seg == "." {
				return root
			}
		}
		out := &url.URL{Path: p, RawPath: u.RawPath, RawQuery: u.RawQuery, Fragment: u.Fragment, RawFragment: u.RawFragment}
		s := out.String()
		if strings.HasPrefix(s, "//") {
			return root
		}
		return s
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" || u.Host == "" {
		return root
	}
	origin := scheme + "://" + strings.ToLower(u.Host)
	if origin == a.origin {
		// Same origin: check it as the path it is, prefix and dot
		// segments included ("/shop/%2e%2e/admin" leaves /shop).
		rel := (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery, Fragment: u.Fragment, RawFragment: u.RawFragment}).String()
		if rel == "" || !strings.HasPrefix(rel, "/") {
			return root
		}
		return a.safeReturnTo(rel)
	}
	if !slices.Contains(a.cfg.ReturnTo.AllowedOrigins, origin) {
		return root
	}
	out := &url.URL{Scheme: scheme, Host: strings.ToLower(u.Host), Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery, Fragment: u.Fragment, RawFragment: u.RawFragment}
	return out.String()
}
