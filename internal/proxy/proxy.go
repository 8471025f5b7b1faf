// Package proxy forwards a browser's API calls to an upstream with the
// user's access token attached, and nothing of the browser's credentials.
//
// Hygiene (SPEC §6.6), applied to every request:
//   - only the configured prefix is proxied, and the path below it is
//     checked so that no encoded "..", "/" or "\" escapes the prefix;
//   - the BFF's own cookies, the browser's Authorization and the CSRF header
//     are removed; the bearer token is set after net/http/httputil removed the
//     hop-by-hop headers (RFC 9110 §7.6.1), including those named in
//     Connection, so a client cannot make the proxy drop it;
//   - X-Forwarded-For/-Host/-Proto are set by the BFF, and taken from the
//     client only when it is a trusted proxy;
//   - an upstream Set-Cookie for the BFF's cookies is dropped;
//   - upgrades (WebSocket) and streams (SSE) pass through unbuffered.
package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// TokenSource yields the access token for a request. ok=false with a nil
// error means "no session": the request goes out anonymously if the route
// allows it, else it is refused with ErrNoSession.
type TokenSource interface {
	AccessToken(r *http.Request) (token string, ok bool, err error)
}

// Errors passed to Config.OnError.
var (
	// ErrNoSession: the route requires a user token and there is none.
	ErrNoSession = errors.New("proxy: no session")
	// ErrBadPath: the path tries to leave the prefix (encoded slash, dot
	// segment, backslash, NUL).
	ErrBadPath = errors.New("proxy: path not allowed")
	// ErrMethod: the route does not allow the method.
	ErrMethod = errors.New("proxy: method not allowed")
	// ErrTimeout: the upstream did not answer in time (504).
	ErrTimeout = errors.New("proxy: upstream timeout")
	// ErrUpstream: the upstream could not be reached (502).
	ErrUpstream = errors.New("proxy: upstream unavailable")
	// ErrClientGone: the browser went away (499, nothing is written).
	ErrClientGone = errors.New("proxy: client went away")
)

// Config configures one proxied prefix.
type Config struct {
	// Prefix is the full request-path prefix, e.g. "/api/" (with the app's
	// path prefix included).
	Prefix string
	// Upstream is the base URL; the path below Prefix is appended to it.
	Upstream *url.URL
	// Methods allowed; empty allows all.
	Methods []string
	// RequireToken refuses calls without a session.
	RequireToken bool
	// Tokens provides the access token.
	Tokens TokenSource
	// IsBFFCookie reports whether a cookie name belongs to the BFF (never
	// forwarded, never set by the upstream).
	IsBFFCookie func(name string) bool
	// StripHeaders are removed from the request (the CSRF header).
	StripHeaders []string
	// TrustedProxy reports whether a peer's X-Forwarded-* may be believed.
	TrustedProxy func(netip.Addr) bool
	// Transport to the upstream; it should bound dial and response-header time.
	Transport http.RoundTripper
	// OnError writes the response for an error (the server's one error writer).
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// Handler proxies one prefix.
type Handler struct {
	cfg Config
	rp  *httputil.ReverseProxy
}

type tokenKey struct{}

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.IsBFFCookie == nil {
		cfg.IsBFFCookie = func(string) bool { return false }
	}
	if cfg.TrustedProxy == nil {
		cfg.TrustedProxy = func(netip.Addr) bool { return false }
	}
	h := &Handler{cfg: cfg}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      cfg.Transport,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		// FlushInterval 0 still flushes at once for text/event-stream and
		// unknown-length bodies (SSE stays live); -1 flushes every write.
		FlushInterval: -1,
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(h.cfg.Methods) > 0 && !slices.Contains(h.cfg.Methods, r.Method) {
		w.Header().Set("Allow", strings.Join(h.cfg.Methods, ", "))
		h.cfg.OnError(w, r, ErrMethod)
		return
	}
	if _, ok := h.upstreamPath(r); !ok {
		h.cfg.OnError(w, r, ErrBadPath)
		return
	}
	token, ok, err := h.cfg.Tokens.AccessToken(r)
	if err != nil {
		h.cfg.OnError(w, r, err)
		return
	}
	if !ok && h.cfg.RequireToken {
		h.cfg.OnError(w, r, ErrNoSession)
		return
	}
	if ok {
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, token))
	}
	h.rp.ServeHTTP(w, r)
}

// upstreamPath maps the request path to the upstream path (escaped form),
// refusing anything that could leave the prefix once decoded by some server
// on the way: dot segments (also %2e-encoded), encoded slashes and
// backslashes, raw backslashes, NUL and empty segments.
func (h *Handler) upstreamPath(r *http.Request) (string, bool) {
	escaped := r.URL.EscapedPath()
	if !strings.HasPrefix(escaped, h.cfg.Prefix) {
		return "", false
	}
	rest := escaped[len(h.cfg.Prefix):]
	lower := strings.ToLower(rest)
	for _, bad := range []string{"%2f", "%5c", "\\", "%00", "//", "%25"} {
		if strings.Contains(lower, bad) {
			return "", false
		}
	}
	for seg := range strings.SplitSeq(rest, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "." || dec == ".." {
			return "", false
		}
	}
	base := h.cfg.Upstream.EscapedPath()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + rest, true
}

func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	p, _ := h.upstreamPath(in)
	out.URL.Scheme = h.cfg.Upstream.Scheme
	out.URL.Host = h.cfg.Upstream.Host
	out.URL.RawPath = p
	out.URL.Path, _ = url.PathUnescape(p)
	out.URL.RawQuery = in.URL.RawQuery
	out.Host = h.cfg.Upstream.Host

	out.Header.Del("Authorization")
	out.Header.Del("Proxy-Authorization")
	for _, name := range h.cfg.StripHeaders {
		out.Header.Del(name)
	}
	h.stripCookies(out)
	if token, ok := in.Context().Value(tokenKey{}).(string); ok {
		out.Header.Set("Authorization", "Bearer "+token)
	}
	h.setForwarded(pr)
}

// stripCookies keeps only the cookies that are not the BFF's.
func (h *Handler) stripCookies(out *http.Request) {
	cookies := out.Cookies()
	out.Header.Del("Cookie")
	var kept []string
	for _, c := range cookies {
		if !h.cfg.IsBFFCookie(c.Name) {
			kept = append(kept, c.Name+"="+c.Value)
		}
	}
	if len(kept) > 0 {
		out.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}

func (h *Handler) setForwarded(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	host, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		host = in.RemoteAddr
	}
	peer, _ := netip.ParseAddr(host)
	trusted := peer.IsValid() && h.cfg.TrustedProxy(peer)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	fwdHost := in.Host
	var chain []string
	if trusted {
		if v := in.Header.Values("X-Forwarded-For"); len(v) > 0 {
			chain = append(chain, strings.Join(v, ", "))
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			fwdHost = v
		}
	}
	if peer.IsValid() {
		chain = append(chain, peer.Unmap().String())
	}
	out.Header.Del("Forwarded")
	if len(chain) > 0 {
		out.Header.Set("X-Forwarded-For", strings.Join(chain, ", "))
	}
	out.Header.Set("X-Forwarded-Host", fwdHost)
	out.Header.Set("X-Forwarded-Proto", proto)
}

// modifyResponse drops upstream cookies that would overwrite the BFF's.
func (h *Handler) modifyResponse(resp *http.Response) error {
	values := resp.Header.Values("Set-Cookie")
	if len(values) == 0 {
		return nil
	}
	resp.Header.Del("Set-Cookie")
	for _, v := range values {
		c, err := http.ParseSetCookie(v)
		if err != nil || h.cfg.IsBFFCookie(c.Name) {
			continue
		}
		resp.Header.Add("Set-Cookie", v)
	}
	return nil
}

func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	var ne net.Error
	switch {
	case errors.Is(r.Context().Err(), context.Canceled):
		h.cfg.OnError(w, r, errors.Join(ErrClientGone, err))
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		h.cfg.OnError(w, r, errors.Join(ErrTimeout, err))
	default:
		h.cfg.OnError(w, r, errors.Join(ErrUpstream, err))
	}
}
