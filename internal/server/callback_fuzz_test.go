package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCallback: whatever the query or form body of /auth/callback, the BFF
// answers with a redirect to the app or to login, or a 4xx page; it never
// panics, never answers 5xx, never starts a session and never echoes the
// input into a redirect.
func FuzzCallback(f *testing.F) {
	for _, s := range []string{"code=abc&state=xyz", "error=access_denied&state=x", "state=", "code=a&error=b",
		"state=%00%ff", "state=" + strings.Repeat("a", 5000), "code=x&state=x&state=y", "%zz", "error=<script>&error_description=x"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	cfg, err := cfgWithURLExtra("https://app.example.com", "")
	if err != nil {
		f.Fatal(err)
	}
	cfg.Limits.LoginRatePerMinute = 1 << 30
	s, err := newServerNoT(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string, post bool) {
		var r *http.Request
		if post {
			r = httptest.NewRequest("POST", "https://app.example.com/auth/callback", strings.NewReader(raw))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest("GET", "https://app.example.com/auth/callback", nil)
			r.URL.RawQuery = raw
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusSeeOther:
			if loc := w.Header().Get("Location"); loc != "/" && loc != "/auth/login" {
				t.Fatalf("callback %q redirected to %q", raw, loc)
			}
		case http.StatusBadRequest, http.StatusForbidden:
		default:
			t.Fatalf("callback %q answered %d: %s", raw, w.Code, w.Body)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == "__Host-bff" && c.MaxAge >= 0 && c.Value != "" {
				t.Fatalf("callback %q started a session", raw)
			}
		}
	})
}
