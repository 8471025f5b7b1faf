package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// isBFF matches the server's rule: the session cookie and its "-"-suffixed
// login-transaction cookies.
func isBFF(name string) bool { return name == "__Host-bff" || strings.HasPrefix(name, "__Host-bff-") }

func TestRequestHeaderHygiene(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     Config
		headers []string
		check   func(t *testing.T, h http.Header)
	}{
		{
			name:    "browser Authorization replaced by the bearer",
			headers: []string{"Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: Basic eDp5"},
			check: func(t *testing.T, h http.Header) {
				want(t, h, "Authorization", "Bearer tok")
				want(t, h, "Proxy-Authorization")
			},
		},
		{
			name:    "browser Authorization dropped on anonymous calls",
			cfg:     Config{Tokens: &tokens{}},
			headers: []string{"Authorization: Bearer stolen"},
			check:   func(t *testing.T, h http.Header) { want(t, h, "Authorization") },
		},
		{
			name:    "CSRF header stripped",
			cfg:     Config{StripHeaders: []string{"X-CSRF"}},
			headers: []string{"X-Csrf: 1", "X-Other: kept"},
			check: func(t *testing.T, h http.Header) {
				want(t, h, "X-Csrf")
				want(t, h, "X-Other", "kept")
			},
		},
		{
			name: "BFF cookies stripped, others kept byte for byte",
			headers: []string{
				`Cookie: __Host-bff=session; theme=dark; __Host-bff-tx-4f2a=pending; other="quoted"`,
				`Cookie: json={"a":1}; back\slash=v; __Host-bff=again`, // HTTP/2 sends one header per cookie
			},
			check: func(t *testing.T, h http.Header) {
				want(t, h, "Cookie", `theme=dark; other="quoted"; json={"a":1}; back\slash=v`)
			},
		},
		{
			name:    "only BFF cookies: no Cookie header at all",
			headers: []string{"Cookie: __Host-bff=s; __Host-bff-tx-1=t"},
			check:   func(t *testing.T, h http.Header) { want(t, h, "Cookie") },
		},
		{
			name:    "Connection cannot strip the bearer, and its headers go",
			headers: []string{"Connection: Authorization, X-Foo, keep-alive", "X-Foo: bar", "X-Bar: kept"},
			check: func(t *testing.T, h http.Header) {
				want(t, h, "Authorization", "Bearer tok")
				want(t, h, "X-Foo")
				want(t, h, "Connection")
				want(t, h, "X-Bar", "kept")
			},
		},
		{
			name:    "Connection cannot strip X-Forwarded-For",
			headers: []string{"Connection: X-Forwarded-For, X-Forwarded-Proto"},
			check: func(t *testing.T, h http.Header) {
				want(t, h, "X-Forwarded-For", "203.0.113.9")
				want(t, h, "X-Forwarded-Proto", "http")
			},
		},
		{
			name:    "hop-by-hop headers removed (RFC 9110 §7.6.1)",
			headers: []string{"Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "Te: gzip", "Trailer: X-T", "Upgrade: foo/1"},
			check: func(t *testing.T, h http.Header) {
				for _, k := range []string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Connection"} {
					want(t, h, k)
				}
			},
		},
		{
			name:    "Te: trailers survives alone",
			headers: []string{"Te: deflate, trailers"},
			check:   func(t *testing.T, h http.Header) { want(t, h, "Te", "trailers") },
		},
		{
			name:    "non-websocket upgrade (h2c smuggling) removed",
			headers: []string{"Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "Http2-Settings: AAMAAABkAARAAAAAAAIAAAAA"},
			check: func(t *testing.T, h http.Header) {
				for _, k := range []string{"Upgrade", "Connection", "Http2-Settings"} {
					want(t, h, k)
				}
			},
		},
		{
			name:    "websocket plus another protocol removed",
			headers: []string{"Connection: Upgrade", "Upgrade: websocket, h2c"},
			check: func(t *testing.T, h http.Header) {
				want(t, h, "Upgrade")
				want(t, h, "Connection")
			},
		},
		{
			name: "spoofable client and routing headers removed",
			headers: []string{"X-Real-Ip: 1.2.3.4", "True-Client-Ip: 1.2.3.4", "X-Original-Url: /admin", "X-Rewrite-Url: /admin",
				"X-Forwarded-Prefix: /admin", "X-Forwarded-Port: 443", "User-Agent: test-agent", "Accept: application/json"},
			check: func(t *testing.T, h http.Header) {
				for _, k := range []string{"X-Real-Ip", "True-Client-Ip", "X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Prefix", "X-Forwarded-Port"} {
					want(t, h, k)
				}
				want(t, h, "User-Agent", "test-agent")
				want(t, h, "Accept", "application/json")
			},
		},
		{
			name:    "method override removed when methods are limited",
			cfg:     Config{Methods: []string{"GET"}},
			headers: []string{"X-Http-Method-Override: DELETE", "X-Http-Method: DELETE", "X-Method-Override: DELETE"},
			check: func(t *testing.T, h http.Header) {
				for _, k := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"} {
					want(t, h, k)
				}
			},
		},
		{
			name:    "method override kept when all methods are allowed",
			headers: []string{"X-Http-Method-Override: PATCH"},
			check:   func(t *testing.T, h http.Header) { want(t, h, "X-Http-Method-Override", "PATCH") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newEcho(t)
			cfg := tc.cfg
			cfg.IsBFFCookie = isBFF
			h, e := setup(t, up, "/", cfg)
			_, got := serve(t, h, mustRequest(t, "GET", "/api/x", tc.headers...))
			if got == nil {
				t.Fatalf("not proxied: %v", e.get())
			}
			tc.check(t, got.Header)
		})
	}
}

// want checks that h holds exactly the values for key (none: absent).
func want(t *testing.T, h http.Header, key string, values ...string) {
	t.Helper()
	if got := h.Values(key); !slices.Equal(got, values) {
		t.Errorf("upstream %s = %q, want %q", key, got, values)
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()
	trusted := func(a netip.Addr) bool { return netip.MustParsePrefix("10.0.0.0/8").Contains(a) }
	spoof := []string{"X-Forwarded-For: 198.51.100.7", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https", "Forwarded: for=198.51.100.7;proto=https"}
	for _, tc := range []struct {
		name, remote string
		tls          bool
		headers      []string
		xff, xfh     string
		xfp          string
	}{
		{"untrusted peer: client values replaced", "203.0.113.9:5555", false, spoof, "203.0.113.9", "app.example.com", "http"},
		{"untrusted IPv6 peer", "[2001:db8::1]:5555", false, spoof, "2001:db8::1", "app.example.com", "http"},
		{"untrusted peer over TLS", "203.0.113.9:5555", true, spoof, "203.0.113.9", "app.example.com", "https"},
		{"trusted peer: values kept, peer appended", "10.0.0.2:5555", false, spoof, "198.51.100.7, 10.0.0.2", "evil.example", "https"},
		{"trusted IPv4-mapped peer", "[::ffff:10.0.0.2]:5555", false, spoof, "198.51.100.7, 10.0.0.2", "evil.example", "https"},
		{"trusted peer, several X-Forwarded-For lines", "10.0.0.2:5555", false,
			[]string{"X-Forwarded-For: 192.0.2.1, 198.51.100.7", "X-Forwarded-For: 10.9.9.9"}, "192.0.2.1, 198.51.100.7, 10.9.9.9, 10.0.0.2", "app.example.com", "http"},
		{"trusted peer, bogus proto ignored", "10.0.0.2:5555", false, []string{"X-Forwarded-Proto: javascript"}, "10.0.0.2", "app.example.com", "http"},
		{"trusted peer, no forwarded headers", "10.0.0.2:5555", true, nil, "10.0.0.2", "app.example.com", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newEcho(t)
			h, e := setup(t, up, "/", Config{TrustedProxy: trusted})
			r := mustRequest(t, "GET", "/api/x", tc.headers...)
			r.RemoteAddr = tc.remote
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			_, got := serve(t, h, r)
			if got == nil {
				t.Fatalf("not proxied: %v", e.get())
			}
			want(t, got.Header, "X-Forwarded-For", tc.xff)
			want(t, got.Header, "X-Forwarded-Host", tc.xfh)
			want(t, got.Header, "X-Forwarded-Proto", tc.xfp)
			want(t, got.Header, "Forwarded")
		})
	}
}

func TestUpstreamSetCookie(t *testing.T) {
	t.Parallel()
	set := []string{
		"__Host-bff=evil; Path=/; Secure; HttpOnly",
		"__Host-bff-tx-4f2a=evil; Path=/; Secure",
		"=__Host-bff=evil", // a nameless cookie some browsers send as "__Host-bff=evil"
		"__Host-bff",       // the same, without "="
		"theme=dark; Path=/",
		"__Host-bffx=kept; Path=/; Secure",
		"lang=en",
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range set {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Set("X-Upstream", "1")
	}))
	t.Cleanup(up.Close)
	h, e := setup(t, nil, "", Config{Upstream: mustURL(t, up.URL), IsBFFCookie: isBFF})
	w, _ := serve(t, h, mustRequest(t, "GET", "/api/x"))
	if l := e.get(); len(l) != 0 || w.Code != http.StatusOK {
		t.Fatalf("status %d, errors %v", w.Code, l)
	}
	wantSet := []string{"theme=dark; Path=/", "__Host-bffx=kept; Path=/; Secure", "lang=en"}
	if got := w.Header().Values("Set-Cookie"); !slices.Equal(got, wantSet) {
		t.Errorf("Set-Cookie = %q, want %q", got, wantSet)
	}
	if w.Header().Get("X-Upstream") != "1" {
		t.Error("other upstream headers lost")
	}
}
