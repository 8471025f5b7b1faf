// Package proxy forwards a browser's API calls to an upstream with the
// user's access token attached, and nothing of the browser's credentials.
//
// Hygiene (SPEC §6.6), applied to every request:
//   - only the configured prefix is proxied, and the path below it is
//     checked so that nothing escapes the prefix once some server on the way
//     decodes or normalises it (see upstreamPath);
//   - the BFF's own cookies, the browser's Authorization and
//     Proxy-Authorization and the CSRF header are removed; the bearer token
//     is set after net/http/httputil removed the hop-by-hop headers
//     (RFC 9110 §7.6.1), including those named in Connection, so a client
//     cannot make the proxy drop it;
//   - only WebSocket upgrades pass: any other Upgrade (h2c above all, which
//     would hand the client a raw HTTP/2 connection to the upstream past
//     every check here) is removed;
//   - X-Forwarded-For/-Host/-Proto are set by the BFF, and taken from the
//     client only when it is a trusted proxy; Forwarded, X-Real-Ip and the
//     headers some frameworks use to override the path (X-Original-URL,
//     X-Rewrite-URL) are removed; with a Methods list, so are the
//     method-override headers (X-HTTP-Method-Override…);
//   - query parameters the standard library cannot parse are dropped
//     (parameter smuggling, Go issue 25192);
//   - an upstream Set-Cookie for the BFF's cookies is dropped;
//   - upgrades (WebSocket) and streams (SSE, any body of unknown length)
//     pass through unbuffered.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// TokenSource yields the access token for a request. ok=false with a nil
// error means "no session": the request goes out anonymously if the route
// allows it, else it is refused with ErrNoSession. An empty token counts as
// no session.
type TokenSource interface {
	AccessToken(r *http.Request) (token string, ok bool, err error)
}

// Errors passed to Config.OnError.
var (
	// ErrNoSession: the route requires a user token and there is none.
	ErrNoSession = errors.New("proxy: no session")
	// ErrBadPath: the path is not under the prefix, or could leave it once
	// decoded or normalised (dot segment, encoded slash or backslash, double
	// encoding, control character; see the package doc).
	ErrBadPath = errors.New("proxy: path not allowed")
	// ErrMethod: the route does not allow the method.
	ErrMethod = errors.New("proxy: method not allowed")
	// ErrTimeout: the upstream did not answer in time (504).
	ErrTimeout = errors.New("proxy: upstream timeout")
	// ErrUpstream: the upstream could not be reached (502).
	ErrUpstream = errors.New("proxy: upstream unavailable")
	// ErrBodyTooLarge: the request body exceeded the limit while being
	// streamed upstream (413).
	ErrBodyTooLarge = errors.New("proxy: request body too large")
	// ErrClientGone: the browser went away (499, nothing is written).
	ErrClientGone = errors.New("proxy: client went away")
)

// DefaultResponseHeaderTimeout bounds waiting for the upstream's response
// headers when Config.Transport is nil.
const DefaultResponseHeaderTimeout = 30 * time.Second

// Config configures one proxied prefix.
type Config struct {
	// Prefix is the full request-path prefix, e.g. "/api/" (with the app's
	// path prefix included). It must start and end with "/".
	Prefix string
	// Upstream is the base URL; the path below Prefix is appended to it.
	// Required.
	Upstream *url.URL
	// Methods allowed; empty allows all.
	Methods []string
	// RequireToken refuses calls without a session.
	RequireToken bool
	// Tokens provides the access token. Nil means no session ever.
	Tokens TokenSource
	// IsBFFCookie reports whether a cookie name belongs to the BFF (never
	// forwarded, never set by the upstream). Nil means none.
	IsBFFCookie func(name string) bool
	// StripHeaders are removed from the request (the CSRF header).
	StripHeaders []string
	// OwnResponseHeaders are set by the BFF on every response (security
	// headers); the upstream's copies are dropped so each appears once,
	// with the BFF's value.
	OwnResponseHeaders []string
	// PublicHost and PublicProto are the app's public host and scheme, sent
	// as X-Forwarded-Host/-Proto unless a trusted proxy says otherwise (the
	// client's Host header is never trusted). Empty: taken from the request.
	PublicHost, PublicProto string
	// TrustedProxy reports whether a peer's X-Forwarded-* may be believed.
	// It is given the peer address unmapped (IPv4 as IPv4). Nil trusts none.
	TrustedProxy func(netip.Addr) bool
	// Transport to the upstream; it should bound dial and response-header
	// time. Nil means a clone of http.DefaultTransport with
	// ResponseHeaderTimeout DefaultResponseHeaderTimeout.
	Transport http.RoundTripper
	// OnError writes the response for an error (the server's one error
	// writer). Nil writes a plain status: 401, 400, 405, 504, 499 or 502.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// Handler proxies one prefix.
type Handler struct {
	cfg Config
	rp  *httputil.ReverseProxy
}

// outbound is what ServeHTTP decided, handed to rewrite via the context.
type outbound struct {
	path  string // escaped upstream path
	token string // "" for an anonymous call
}

type outboundKey struct{}

// New returns a Handler. It panics on a nil Upstream or a Prefix that does
// not start and end with "/": wiring errors, not request errors.
func New(cfg Config) *Handler {
	if cfg.Upstream == nil {
		panic("proxy.New: Upstream is required")
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || !strings.HasSuffix(cfg.Prefix, "/") {
		panic(fmt.Sprintf("proxy.New: Prefix %q must start and end with /", cfg.Prefix))
	}
	if cfg.IsBFFCookie == nil {
		cfg.IsBFFCookie = func(string) bool { return false }
	}
	if cfg.TrustedProxy == nil {
		cfg.TrustedProxy = func(netip.Addr) bool { return false }
	}
	if cfg.OnError == nil {
		cfg.OnError = writeError
	}
	if cfg.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
		cfg.Transport = t
	}
	h := &Handler{cfg: cfg}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      cfg.Transport,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		// 0: bodies of known length are copied with buffered writes, while
		// text/event-stream and bodies of unknown length (streams) are
		// flushed after every write, so SSE stays live.
		FlushInterval: 0,
		// Reuse copy buffers: without a pool every request allocates 32 KiB.
		BufferPool: &bufferPool{},
	}
	return h
}

// bufferPool implements httputil.BufferPool with a sync.Pool of 32 KiB
// buffers (the size ReverseProxy would allocate).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(h.cfg.Methods) > 0 && !slices.Contains(h.cfg.Methods, r.Method) {
		w.Header().Set("Allow", strings.Join(h.cfg.Methods, ", "))
		h.cfg.OnError(w, r, ErrMethod)
		return
	}
	p, ok := h.upstreamPath(r)
	if !ok {
		h.cfg.OnError(w, r, ErrBadPath)
		return
	}
	var token string
	if h.cfg.Tokens != nil {
		t, ok, err := h.cfg.Tokens.AccessToken(r)
		if err != nil {
			h.cfg.OnError(w, r, err)
			return
		}
		if ok {
			token = t
		}
	}
	if token == "" && h.cfg.RequireToken {
		h.cfg.OnError(w, r, ErrNoSession)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), outboundKey{}, outbound{path: p, token: token}))
	h.rp.ServeHTTP(w, r)
}

// upstreamPath maps the request path to the upstream path (escaped form).
// It refuses anything that could leave the prefix once decoded or
// normalised by some server on the way:
//   - dot segments, also %2e-encoded, with a ";param" suffix (Tomcat's
//     "..;"), with trailing dots or spaces (Windows), or written with
//     compatibility characters that NFKC folds to dots (U+FF0E);
//   - encoded slashes and backslashes, raw backslashes, and anything
//     NFKC folds to one (U+FF0F, U+FF3C);
//   - "%25" (a double encoding such as %252e), NUL and other control
//     characters, invalid UTF-8 (overlong encodings such as %c0%ae);
//   - empty segments ("//"), except a trailing slash.
func (h *Handler) upstreamPath(r *http.Request) (string, bool) {
	escaped := r.URL.EscapedPath()
	if !strings.HasPrefix(escaped, h.cfg.Prefix) {
		return "", false
	}
	rest := escaped[len(h.cfg.Prefix):]
	segs := strings.Split(rest, "/")
	for i, seg := range segs {
		if seg == "" {
			if i == len(segs)-1 {
				continue // trailing slash, or the prefix itself
			}
			return "", false
		}
		if !segmentOK(seg) {
			return "", false
		}
	}
	base := h.cfg.Upstream.EscapedPath()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + rest, true
}

func segmentOK(seg string) bool {
	lower := strings.ToLower(seg)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%25") || strings.Contains(seg, "\\") {
		return false
	}
	dec, err := url.PathUnescape(seg)
	if err != nil || !utf8.ValidString(dec) {
		return false
	}
	for _, r := range dec {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	if dotSegment(dec) {
		return false
	}
	if n := norm.NFKC.String(dec); n != dec && (strings.ContainsAny(n, "/\\") || dotSegment(n)) {
		return false
	}
	return true
}

// dotSegment reports whether a decoded segment, without its ";params", is
// made of dots (and spaces) only: "." and "..", and what Windows or Tomcat
// turn into them ("...", ".. ", "..;x").
func dotSegment(dec string) bool {
	s, _, _ := strings.Cut(dec, ";")
	return strings.Contains(s, ".") && strings.Trim(s, ". ") == ""
}

// spoofable are request headers a client could use to lie to the upstream
// about itself or to re-route the request; the BFF never forwards them.
var spoofable = []string{
	"Authorization", "Proxy-Authorization",
	"X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl",
	"X-Original-Url", "X-Original-Uri", "X-Rewrite-Url",
}

// methodOverride are headers some frameworks obey to change the method.
var methodOverride = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	ob, _ := in.Context().Value(outboundKey{}).(outbound)
	out.URL.Scheme = h.cfg.Upstream.Scheme
	out.URL.Host = h.cfg.Upstream.Host
	out.URL.RawPath = ob.path
	out.URL.Path, _ = url.PathUnescape(ob.path)
	// out.URL.RawQuery is kept: ReverseProxy already removed the parameters
	// url.ParseQuery refuses, which upstreams might read differently.
	out.Host = h.cfg.Upstream.Host

	for _, name := range spoofable {
		out.Header.Del(name)
	}
	if len(h.cfg.Methods) > 0 {
		for _, name := range methodOverride {
			out.Header.Del(name)
		}
	}
	for _, name := range h.cfg.StripHeaders {
		out.Header.Del(name)
	}
	// ReverseProxy re-added Connection and Upgrade for any upgrade; keep
	// them for WebSocket only.
	if up := out.Header.Get("Upgrade"); up != "" && !strings.EqualFold(strings.TrimSpace(up), "websocket") {
		out.Header.Del("Upgrade")
		out.Header.Del("Connection")
	}
	h.stripCookies(out)
	if ob.token != "" {
		out.Header.Set("Authorization", "Bearer "+ob.token)
	}
	h.setForwarded(pr)
}

// stripCookies removes the BFF's cookies from every Cookie header and keeps
// the other pairs byte for byte (a parse and re-serialisation would drop or
// alter values the standard library finds invalid).
func (h *Handler) stripCookies(out *http.Request) {
	values := out.Header.Values("Cookie")
	if len(values) == 0 {
		return
	}
	var kept []string
	for _, v := range values {
		for pair := range strings.SplitSeq(v, ";") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			name, _, _ := strings.Cut(pair, "=")
			if h.cfg.IsBFFCookie(strings.TrimSpace(name)) {
				continue
			}
			kept = append(kept, pair)
		}
	}
	out.Header.Del("Cookie")
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
	peer = peer.Unmap().WithZone("")
	trusted := peer.IsValid() && h.cfg.TrustedProxy(peer)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if h.cfg.PublicProto != "" {
		proto = h.cfg.PublicProto
	}
	fwdHost := in.Host
	if h.cfg.PublicHost != "" {
		fwdHost = h.cfg.PublicHost
	}
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
		chain = append(chain, peer.String())
	}
	// ReverseProxy removed the client's Forwarded and X-Forwarded-*.
	out.Header.Del("Forwarded")
	if len(chain) > 0 {
		out.Header.Set("X-Forwarded-For", strings.Join(chain, ", "))
	}
	if fwdHost != "" {
		out.Header.Set("X-Forwarded-Host", fwdHost)
	}
	out.Header.Set("X-Forwarded-Proto", proto)
}

// modifyResponse drops upstream cookies that would overwrite the BFF's, and
// refuses a switch to any protocol but WebSocket.
func (h *Handler) modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusSwitchingProtocols && !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return errors.New("upstream switched to a protocol other than websocket")
	}
	for _, name := range h.cfg.OwnResponseHeaders {
		resp.Header.Del(name)
	}
	if ob, _ := resp.Request.Context().Value(outboundKey{}).(outbound); ob.token != "" {
		privateCache(resp.Header)
	}
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
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.cfg.OnError(w, r, errors.Join(ErrBodyTooLarge, err))
	case errors.Is(r.Context().Err(), context.Canceled):
		h.cfg.OnError(w, r, errors.Join(ErrClientGone, err))
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		h.cfg.OnError(w, r, errors.Join(ErrTimeout, err))
	default:
		h.cfg.OnError(w, r, errors.Join(ErrUpstream, err))
	}
}

// privateCache keeps shared caches (CDNs in front of the BFF) from storing
// a response made for one user's token and serving it to others: a cache
// there sees only the cookie (RFC 9111 §3.5 protects Authorization, not
// cookies). Cache-Control becomes private (public and s-maxage dropped,
// no-store kept), CDN-targeted headers (RFC 9213 CDN-Cache-Control and the
// vendor variants, Surrogate-Control) are removed, and the response varies
// by Cookie.
func privateCache(h http.Header) {
	for _, name := range []string{"CDN-Cache-Control", "Cloudflare-CDN-Cache-Control", "Surrogate-Control", "Akamai-Cache-Control", "Fastly-Surrogate-Control"} {
		h.Del(name)
	}
	var kept []string
	noStore := false
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(strings.ToLower(d), "=")
			switch name {
			case "", "public", "private", "s-maxage", "proxy-revalidate":
				continue
			case "no-store":
				noStore = true
			}
			kept = append(kept, d)
		}
	}
	if !noStore {
		kept = append([]string{"private"}, kept...)
	}
	h.Set("Cache-Control", strings.Join(kept, ", "))
	h.Add("Vary", "Cookie")
}

// writeError is the OnError used when none is configured.
func writeError(w http.ResponseWriter, _ *http.Request, err error) {
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, ErrNoSession):
		code = http.StatusUnauthorized
	case errors.Is(err, ErrBadPath):
		code = http.StatusBadRequest
	case errors.Is(err, ErrMethod):
		code = http.StatusMethodNotAllowed
	case errors.Is(err, ErrTimeout):
		code = http.StatusGatewayTimeout
	case errors.Is(err, ErrClientGone):
		w.WriteHeader(499)
		return
	}
	http.Error(w, http.StatusText(code), code)
}
