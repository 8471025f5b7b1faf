package proxy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

type staticToken string

func (s staticToken) AccessToken(*http.Request) (string, bool, error) { return string(s), s != "", nil }

// TestPrivateCaching: a response made with a user's token is never left
// cacheable by a shared cache that only sees the cookie.
func TestPrivateCaching(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		upstreamCC, token, wantCC string
		wantVaryCookie            bool
	}{
		{"max-age=600", "tok", "private, max-age=600", true},
		{"", "tok", "private", true},
		{"public, max-age=60", "tok", "private, max-age=60", true},
		{"public, s-maxage=600, max-age=60", "tok", "private, max-age=60", true},
		{"no-store", "tok", "no-store", true},
		{"max-age=600", "", "max-age=600", false}, // anonymous: left alone
	} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.upstreamCC != "" {
				w.Header().Set("Cache-Control", tc.upstreamCC)
			}
			w.Header().Set("CDN-Cache-Control", "max-age=600")
			w.Header().Set("Surrogate-Control", "max-age=600")
			w.Header().Set("Vary", "Origin")
		}))
		u, _ := url.Parse(up.URL + "/")
		h := New(Config{Prefix: "/api/", Upstream: u, Tokens: staticToken(tc.token)})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/x", nil))
		up.Close()
		vary := strings.Join(w.Header().Values("Vary"), ",")
		if tc.token != "" && (w.Header().Get("CDN-Cache-Control") != "" || w.Header().Get("Surrogate-Control") != "") {
			t.Errorf("token response keeps CDN cache headers: %v", w.Header())
		}
		if got := w.Header().Get("Cache-Control"); got != tc.wantCC || strings.Contains(vary, "Cookie") != tc.wantVaryCookie {
			t.Errorf("upstream %q token %q: Cache-Control %q Vary %q, want %q (Vary Cookie %v)", tc.upstreamCC, tc.token, got, vary, tc.wantCC, tc.wantVaryCookie)
		}
	}
}

// TestPublicForwardedHost: without a trusted proxy the upstream learns the
// app's configured host and scheme, never the client's Host header.
func TestPublicForwardedHost(t *testing.T) {
	t.Parallel()
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer up.Close()
	u, _ := url.Parse(up.URL + "/")
	h := New(Config{Prefix: "/api/", Upstream: u, Tokens: staticToken("t"), PublicHost: "app.example.com", PublicProto: "https"})
	r := httptest.NewRequest("GET", "http://evil.example/api/x", nil)
	r.Header.Set("X-Forwarded-Host", "evil.example")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got.Get("X-Forwarded-Host") != "app.example.com" || got.Get("X-Forwarded-Proto") != "https" {
		t.Fatalf("X-Forwarded-Host %q Proto %q", got.Get("X-Forwarded-Host"), got.Get("X-Forwarded-Proto"))
	}
}

// TestStreamedBodyTooLarge: a chunked body over the limit is a 413 for the
// client, not an upstream error.
func TestStreamedBodyTooLarge(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = r.Body.Read(make([]byte, 1<<20))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL + "/")
	var gotErr error
	h := New(Config{Prefix: "/api/", Upstream: u, Tokens: staticToken("t"), OnError: func(w http.ResponseWriter, r *http.Request, err error) {
		gotErr = err
		w.WriteHeader(http.StatusTeapot)
	}})
	r := httptest.NewRequest("POST", "/api/x", strings.NewReader(strings.Repeat("a", 4096)))
	r.ContentLength = -1
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, 1024)
	h.ServeHTTP(w, r)
	if !errors.Is(gotErr, ErrBodyTooLarge) {
		t.Fatalf("error %v, want ErrBodyTooLarge", gotErr)
	}
}
