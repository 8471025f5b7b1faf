package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("not a JSON error (%d): %q", w.Code, w.Body.String())
	}
	if e.RequestID == "" || e.RequestID != w.Header().Get("X-Request-ID") {
		t.Fatalf("error without matching request ID: %+v / %q", e, w.Header().Get("X-Request-ID"))
	}
	return e.Error
}

// TestCSRF: SPEC §6.2 — the header is required on /auth/me, /auth/logout and
// APIs, and cross-site requests are refused.
func TestCSRF(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testConfig(t, ""))
	endpoints := []struct{ method, path string }{{"GET", "/auth/me"}, {"GET", "/api/x"}, {"POST", "/auth/logout"}, {"DELETE", "/api/x"}}
	cases := []struct {
		name     string
		header   map[string]string
		wantCode string // "" = passes the CSRF check
	}{
		{"no header", nil, "csrf_header_missing"},
		{"header with another value", map[string]string{"X-CSRF": "0"}, "csrf_header_missing"},
		{"header, cross-site Origin", map[string]string{"X-CSRF": "1", "Origin": "https://evil.example"}, "cross_site"},
		{"header, Origin null", map[string]string{"X-CSRF": "1", "Origin": "null"}, "cross_site"},
		{"header, Sec-Fetch-Site cross-site", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "cross-site"}, "cross_site"},
		{"header, Sec-Fetch-Site same-site", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "same-site"}, "cross_site"},
		{"header, look-alike Origin", map[string]string{"X-CSRF": "1", "Origin": "https://app.example.com.evil.example"}, "cross_site"},
		{"header, same origin", map[string]string{"X-CSRF": "1", "Origin": "https://app.example.com", "Sec-Fetch-Site": "same-origin"}, ""},
		{"header, same Origin but Sec-Fetch-Site cross-site", map[string]string{"X-CSRF": "1", "Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"}, "cross_site"},
		{"header, Sec-Fetch-Site in capitals", map[string]string{"X-CSRF": "1", "Sec-Fetch-Site": "Cross-Site"}, "cross_site"},
		{"header, CORS-allowed origin", map[string]string{"X-CSRF": "1", "Origin": "https://partner.example.com", "Sec-Fetch-Site": "cross-site"}, ""},
		{"header, no Origin (same-origin GET)", map[string]string{"X-CSRF": "1"}, ""},
		{"no header, Upgrade that is no WebSocket handshake", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Origin": "https://app.example.com"}, "csrf_header_missing"},
	}
	for _, ep := range endpoints {
		for _, tc := range cases {
			r := httptest.NewRequest(ep.method, "https://app.example.com"+ep.path, nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := serve(s, r)
			if tc.wantCode != "" {
				if w.Code != http.StatusForbidden || errorCode(t, w) != tc.wantCode {
					t.Errorf("%s %s %s: %d %s, want 403 %s", ep.method, ep.path, tc.name, w.Code, w.Body, tc.wantCode)
				}
				continue
			}
			if w.Code == http.StatusForbidden {
				t.Errorf("%s %s %s: refused (%s)", ep.method, ep.path, tc.name, w.Body)
			}
		}
	}
}

// TestLogoutCannotBeTriggeredCrossSite: a link (GET) or a cross-site form
// never logs out; a same-origin form does.
func TestLogoutCannotBeTriggeredCrossSite(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testConfig(t, ""))
	form := func(origin, fetchSite string) *http.Request {
		r := httptest.NewRequest("POST", "https://app.example.com/auth/logout", strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Accept", "text/html")
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if fetchSite != "" {
			r.Header.Set("Sec-Fetch-Site", fetchSite)
		}
		return r
	}
	if w := serve(s, httptest.NewRequest("GET", "https://app.example.com/auth/logout", nil)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /auth/logout = %d, want 405", w.Code)
	}
	for _, tc := range []struct {
		origin, site string
		want         int
	}{
		{"https://evil.example", "cross-site", http.StatusForbidden},
		{"", "cross-site", http.StatusForbidden},
		{"", "", http.StatusForbidden},
		{"null", "", http.StatusForbidden},
		{"https://app.example.com", "same-origin", http.StatusSeeOther},
		{"", "same-origin", http.StatusSeeOther},
	} {
		if w := serve(s, form(tc.origin, tc.site)); w.Code != tc.want {
			t.Errorf("form logout Origin %q Sec-Fetch-Site %q: %d, want %d", tc.origin, tc.site, w.Code, tc.want)
		}
	}
}

func TestCORSPreflightSkipsSession(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testConfig(t, ""))
	pre := func(origin string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("OPTIONS", "https://app.example.com/api/x", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "x-csrf, content-type")
		// A cookie that would make a session lookup fail loudly if it happened.
		r.AddCookie(&http.Cookie{Name: "__Host-bff", Value: "garbage"})
		return serve(s, r)
	}
	w := pre("https://partner.example.com")
	if w.Code >= 300 || w.Header().Get("Access-Control-Allow-Origin") != "https://partner.example.com" || w.Header().Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed preflight: %d %v", w.Code, w.Header())
	}
	if w.Header().Get("Set-Cookie") != "" {
		t.Fatal("preflight touched the session")
	}
	w = pre("https://evil.example")
	if w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from an unlisted origin allowed: %v", w.Header())
	}
}

func TestSecurityHeadersOnPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>x</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, testConfig(t, "    spa:\n      dir: "+dir+"\n"))
	for _, p := range []string{"/", "/orders/7", "/index.html"} {
		w := serve(s, httptest.NewRequest("GET", "https://app.example.com"+p, nil))
		h := w.Header()
		if w.Code != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Strict-Transport-Security") == "" {
			t.Errorf("GET %s: %d headers %v", p, w.Code, h)
		}
	}
	if w := serve(s, httptest.NewRequest("GET", "https://app.example.com/missing.js", nil)); w.Code != 404 {
		t.Errorf("missing asset: %d, want 404", w.Code)
	}
	if w := serve(s, httptest.NewRequest("GET", "https://app.example.com/../../etc/passwd", nil)); w.Code == 200 && strings.Contains(w.Body.String(), "root:") {
		t.Error("path traversal out of the SPA directory")
	}
}

func TestErrorsJSONOrPage(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testConfig(t, ""))
	r := httptest.NewRequest("GET", "https://app.example.com/api/x", nil)
	r.Header.Set("X-CSRF", "1")
	r.Header.Set("X-Request-ID", "client-chosen")
	w := serve(s, r)
	if w.Code != 401 || errorCode(t, w) != "unauthenticated" || w.Header().Get("X-Request-ID") == "client-chosen" {
		t.Fatalf("API without session: %d %s %v", w.Code, w.Body, w.Header())
	}
	if loc := w.Header().Get("Location"); loc != "" {
		t.Fatalf("API 401 redirects to %q", loc)
	}
	r = httptest.NewRequest("GET", "https://app.example.com/auth/callback?state=x&error=access_denied", nil)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Sec-Fetch-Mode", "navigate")
	w = serve(s, r)
	body := w.Body.String()
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(body, "Request ID") || strings.Contains(body, "goroutine") {
		t.Fatalf("navigation error page: %d %q", w.Code, body)
	}
	w = serve(s, httptest.NewRequest("GET", "https://other.example.com/", nil))
	if w.Code != 200 && w.Code != 404 {
		t.Fatalf("single app answers any host: %d", w.Code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	cfg.Limits.LoginRatePerMinute = 3
	s := newTestServer(t, cfg)
	limited := 0
	for range 6 {
		r := httptest.NewRequest("GET", "https://app.example.com/auth/login", nil)
		r.RemoteAddr = "203.0.113.7:5000"
		if serve(s, r).Code == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d of 6 logins limited, want 3", limited)
	}
	r := httptest.NewRequest("GET", "https://app.example.com/auth/login", nil)
	r.RemoteAddr = "203.0.113.8:5000"
	if serve(s, r).Code == http.StatusTooManyRequests {
		t.Fatal("another IP was limited")
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	cfg.Limits.MaxBodyBytes = 1024
	s := newTestServer(t, cfg)
	r := httptest.NewRequest("POST", "https://app.example.com/api/x", strings.NewReader(strings.Repeat("a", 2048)))
	r.Header.Set("X-CSRF", "1")
	if w := serve(s, r); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d, want 413", w.Code)
	}
}

// TestNoCORSWithoutOrigins: with no configured origins, a preflight gets no
// Access-Control-Allow-Origin at all (not "*").
func TestNoCORSWithoutOrigins(t *testing.T) {
	t.Parallel()
	cfg, err := cfgWithURLExtra("https://app.example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, cfg)
	r := httptest.NewRequest("OPTIONS", "https://app.example.com/auth/me", nil)
	r.Header.Set("Origin", "https://evil.example")
	r.Header.Set("Access-Control-Request-Method", "GET")
	w := serve(s, r)
	if v := w.Header().Get("Access-Control-Allow-Origin"); v != "" {
		t.Fatalf("Access-Control-Allow-Origin %q without configured origins", v)
	}
}

func TestMetricsMethodLabelIsBounded(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "M1": "OTHER", "get": "OTHER", "PROPFIND": "OTHER"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSPAUpstreamHygiene: pages proxied from a dev server get the same
// hygiene as APIs: no BFF cookie out, no Set-Cookie for it back.
func TestSPAUpstreamHygiene(t *testing.T) {
	t.Parallel()
	var gotCookies []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCookies = nil
		for _, c := range r.Cookies() {
			gotCookies = append(gotCookies, c.Name)
		}
		http.SetCookie(w, &http.Cookie{Name: "__Host-bff", Value: "evil", Path: "/", Secure: true})
		http.SetCookie(w, &http.Cookie{Name: "__Host-bff-tx-AAAA", Value: "evil", Path: "/", Secure: true})
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark"})
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!doctype html>"))
	}))
	t.Cleanup(up.Close)
	s := newTestServer(t, testConfig(t, "    spa:\n      upstream: "+up.URL+"\n"))
	r := httptest.NewRequest("GET", "https://app.example.com/index.html", nil)
	r.AddCookie(&http.Cookie{Name: "__Host-bff", Value: "session"})
	r.AddCookie(&http.Cookie{Name: "pref", Value: "1"})
	w := serve(s, r)
	if w.Code != 200 {
		t.Fatalf("page: %d %s", w.Code, w.Body)
	}
	if len(gotCookies) != 1 || gotCookies[0] != "pref" {
		t.Fatalf("dev server received cookies %v", gotCookies)
	}
	for _, c := range w.Result().Cookies() {
		if strings.HasPrefix(c.Name, "__Host-bff") {
			t.Fatalf("dev server set the BFF cookie %s", c.Name)
		}
	}
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatal("proxied page lacks the app's CSP")
	}
}

// TestSPAUpstreamPaths: page requests reach the dev server with their whole
// path (app prefix included) and any method.
func TestSPAUpstreamPaths(t *testing.T) {
	t.Parallel()
	var got []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	cfg, err := cfgWithURLExtra("https://example.com/shop", "    spa:\n      upstream: "+up.URL+"/base/\n")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, cfg)
	for _, c := range []struct{ method, path string }{{"GET", "/shop"}, {"GET", "/shop/app/page"}, {"POST", "/shop/form"}} {
		r := httptest.NewRequest(c.method, "https://example.com"+c.path, strings.NewReader(""))
		r.Header.Set("Origin", "https://example.com")
		if w := serve(s, r); w.Code != 200 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, w.Code, w.Body)
		}
	}
	want := []string{"GET /base/shop", "GET /base/shop/app/page", "POST /base/shop/form"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("upstream saw %v, want %v", got, want)
	}
}
