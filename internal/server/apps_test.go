package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestCookiesOfOtherAppsNotForwarded: with two apps on one host, neither
// upstream sees any app's session or login cookie.
func TestCookiesOfOtherAppsNotForwarded(t *testing.T) {
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = got[:0]
		for _, c := range r.Cookies() {
			got = append(got, c.Name)
		}
		_ = json.NewEncoder(w).Encode(got)
	}))
	t.Cleanup(upstream.Close)
	cfg, err := cfgWithTwoApps(upstream.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerNoT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/a/api/x", "/b/api/x"} {
		r := httptest.NewRequest("GET", "https://example.com"+path, nil)
		r.Header.Set("X-CSRF", "1")
		for _, n := range []string{"__Host-bff-a", "__Host-bff-b", "__Host-bff-a-tx-abc", "__Host-bff-b-tx-def", "theme"} {
			r.AddCookie(&http.Cookie{Name: n, Value: "v"})
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != 200 || len(got) != 1 || got[0] != "theme" {
			t.Fatalf("%s: %d, upstream saw cookies %v, want only theme", path, w.Code, got)
		}
	}
}
