package proxy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestPathMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, prefix, base, target string
		want                       string // RequestURI at the upstream
	}{
		{"root upstream", "/api/", "", "/api/x/y?q=1", "/x/y?q=1"},
		{"root upstream with slash", "/api/", "/", "/api/x/y?q=1", "/x/y?q=1"},
		{"base path with slash", "/api/", "/base/", "/api/x/y?q=1", "/base/x/y?q=1"},
		{"base path without slash", "/api/", "/base", "/api/x/y?q=1", "/base/x/y?q=1"},
		{"deep base and app prefix", "/shop/api/", "/v1/orders/", "/shop/api/42", "/v1/orders/42"},
		{"prefix only", "/api/", "/base/", "/api/", "/base/"},
		{"trailing slash kept", "/api/", "/base/", "/api/a/b/", "/base/a/b/"},
		{"encoded space", "/api/", "/base/", "/api/a%20b", "/base/a%20b"},
		{"encoded unicode", "/api/", "/base/", "/api/caf%C3%A9/%E6%97%A5%E6%9C%AC", "/base/caf%C3%A9/%E6%97%A5%E6%9C%AC"},
		{"raw unicode", "/api/", "/base/", "/api/café", "/base/caf%C3%A9"},
		{"sub-delims", "/api/", "/base/", "/api/a+b/c:d/e@f/g!h/$x,y", "/base/a+b/c:d/e@f/g!h/$x,y"},
		{"matrix parameter", "/api/", "/base/", "/api/items;v=2", "/base/items;v=2"},
		{"dots inside names", "/api/", "/base/", "/api/.well-known/a..b/..c/file.tar.gz", "/base/.well-known/a..b/..c/file.tar.gz"},
		{"encoded question mark", "/api/", "/base/", "/api/a%3Fb?c=d", "/base/a%3Fb?c=d"},
		{"query passes as is", "/api/", "/", "/api/x?a=1&b=%2F..%2F&c", "/x?a=1&b=%2F..%2F&c"},
		// Parameters url.ParseQuery refuses are dropped, so that the upstream
		// cannot read a query the BFF did not (parameter smuggling).
		{"query with semicolon", "/api/", "/", "/api/x?a=1&b=2;c=3", "/x?a=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newEcho(t)
			h, e := setup(t, up, tc.base, Config{Prefix: tc.prefix})
			_, got := serve(t, h, mustRequest(t, "GET", tc.target))
			if got == nil {
				t.Fatalf("GET %s not proxied: %v", tc.target, e.get())
			}
			if got.RequestURI != tc.want {
				t.Errorf("GET %s with upstream base %q: upstream saw %q, want %q", tc.target, tc.base, got.RequestURI, tc.want)
			}
			if u := mustURL(t, up.URL); got.Host != u.Host {
				t.Errorf("upstream Host = %q, want %q", got.Host, u.Host)
			}
		})
	}
}

// badPaths could leave the prefix on some server on the way.
var badPaths = []string{
	"/api/../secret",
	"/api/..",
	"/api/a/..",
	"/api/a/../../secret",
	"/api/./x",
	"/api/a/./b",
	"/api/a/.",
	"/api/%2e%2e/secret",
	"/api/%2E%2e/",
	"/api/%2e/x",
	"/api/.%2e/x",
	"/api/a/%2f/b",
	"/api/a%2Fb",
	"/api/a%2fb",
	"/api/a%5cb",
	"/api/a%5Cb",
	`/api/a\b`,
	`/api/..\secret`,
	"/api//x",
	"/api/a//b",
	"/api///",
	"/api/%252e%252e/",
	"/api/%252fx",
	"/api/a%25b",
	"/api/%00",
	"/api/a%00.json",
	"/api/a%0d%0aX-Injected:%201",
	"/api/a%7fb",
	"/api/..;/secret",           // Tomcat path parameter
	"/api/..%3b/secret",         // the same, encoded
	"/api/%2e%2e;x=1/",          // encoded dots with a parameter
	"/api/.../secret",           // Windows trims trailing dots
	"/api/..%20/secret",         // and trailing spaces
	"/api/.%20./secret",         // dots and spaces only
	"/api/%c0%ae%c0%ae/x",       // overlong UTF-8 dots
	"/api/%ff/x",                // invalid UTF-8
	"/api/%ef%bc%8e%ef%bc%8e/x", // U+FF0E fullwidth full stops, NFKC ".."
	"/api/a%ef%bc%8fb",          // U+FF0F fullwidth solidus, NFKC "/"
	"/api/a%ef%bc%bcb",          // U+FF3C fullwidth reverse solidus, NFKC "\"
	"/api",                      // not under the prefix
	"/apix/y",
	"/api%2fx",
	"/%61pi/x",
	"/other/api/x",
}

func TestRefusedPaths(t *testing.T) {
	t.Parallel()
	for _, target := range badPaths {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			up := newEcho(t)
			src := &tokens{token: "tok", ok: true}
			h, e := setup(t, up, "/base/", Config{Tokens: src})
			r, err := rawRequest(t, "GET", target)
			if err != nil {
				t.Skipf("net/http refuses %q itself: %v", target, err)
			}
			w, _ := serve(t, h, r)
			if err := e.only(t); !errors.Is(err, ErrBadPath) || w.Code != http.StatusBadRequest {
				t.Errorf("GET %s: error %v, status %d; want ErrBadPath, 400", target, err, w.Code)
			}
			if up.calls.Load() != 0 || src.calls.Load() != 0 {
				t.Errorf("GET %s: upstream called %d, token source %d times; want 0, 0", target, up.calls.Load(), src.calls.Load())
			}
		})
	}
}

// FuzzUpstreamPath checks that any request path the handler accepts goes
// out, once decoded and cleaned, under the upstream's base path, with no
// ".." segment (even decoded twice) and no backslash.
func FuzzUpstreamPath(f *testing.F) {
	for _, s := range append(badPaths, "/api/x/y", "/api/", "/api/a%20b", "/api/caf%C3%A9", "/api/a/", "/api/.well-known/x", "/api/a;b=..") {
		f.Add(s)
	}
	const base = "/base/v1/"
	f.Fuzz(func(t *testing.T, target string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return // net/http's server would answer 400
		}
		r.RemoteAddr = "192.0.2.1:1"
		var got *url.URL
		h := New(Config{
			Prefix:   "/api/",
			Upstream: &url.URL{Scheme: "http", Host: "upstream.test", Path: base},
			OnError:  func(http.ResponseWriter, *http.Request, error) {},
			Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				got = r.URL
				return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: r}, nil
			}),
		})
		h.ServeHTTP(discard{}, r)
		if got == nil {
			return // refused
		}
		wire := got.EscapedPath()
		dec, err := url.PathUnescape(wire)
		if err != nil {
			t.Fatalf("%q: upstream path %q does not decode: %v", target, wire, err)
		}
		if c := path.Clean(dec); c+"/" != base && !strings.HasPrefix(c, base) {
			t.Fatalf("%q: upstream path %q cleans to %q, outside %q", target, wire, c, base)
		}
		for _, p := range []string{dec, unescapeOr(dec)} {
			for seg := range strings.SplitSeq(p, "/") {
				if seg == ".." || seg == "." {
					t.Fatalf("%q: upstream path %q has a dot segment in %q", target, wire, p)
				}
			}
			if strings.Contains(p, "\\") {
				t.Fatalf("%q: upstream path %q has a backslash in %q", target, wire, p)
			}
		}
	})
}

func unescapeOr(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (discard) WriteHeader(int)             {}
