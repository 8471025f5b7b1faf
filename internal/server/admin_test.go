package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bff-dev/bff/internal/session"
)

// startSession creates a session for sub directly through the app's manager.
func startSession(t *testing.T, a *app, sub string) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "https://app.example.com/", nil)
	rec := &session.Record{Subject: sub, SID: "sid-" + sub, AccessToken: "at", RefreshToken: "rt", Claims: session.NewClaims(map[string]any{"sub": sub})}
	if err := a.sessions.Start(w, r, rec); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == a.cfg.Cookie.Name {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

func TestAdminSessions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, testConfig(t, ""))
	a := s.apps[0]
	alice1, _ := startSession(t, a, "alice"), startSession(t, a, "alice")
	bob := startSession(t, a, "bob")
	admin := s.AdminHandler("t0ken")
	call := func(method, target, token string) (int, map[string]any) {
		r := httptest.NewRequest(method, target, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		admin.ServeHTTP(w, r)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if strings.Contains(w.Body.String(), `"rt"`) || strings.Contains(w.Body.String(), `"at"`) {
			t.Fatalf("admin API shows a token: %s", w.Body)
		}
		return w.Code, body
	}
	open := s.AdminHandler("")
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{"127.0.0.1:9090", "", 200}, {"localhost:9090", "", 200}, {"[::1]:9090", "", 200},
		{"attacker.example:9090", "", http.StatusForbidden},
		{"127.0.0.1:9090", "https://attacker.example", http.StatusForbidden},
	} {
		r := httptest.NewRequest("GET", "/admin/sessions?sub=nobody", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		w := httptest.NewRecorder()
		open.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("token-less admin API, Host %q Origin %q: %d, want %d", tc.host, tc.origin, w.Code, tc.want)
		}
	}
	if code, _ := call("GET", "/admin/sessions?sub=alice", ""); code != http.StatusUnauthorized {
		t.Fatalf("without token: %d", code)
	}
	if code, _ := call("GET", "/admin/sessions?sub=alice", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, body := call("GET", "/admin/sessions?sub=alice", "t0ken")
	list, _ := body["sessions"].([]any)
	if code != 200 || len(list) != 2 {
		t.Fatalf("list alice: %d %v", code, body)
	}
	if code, _ := call("GET", "/admin/sessions", "t0ken"); code != http.StatusBadRequest {
		t.Fatalf("list without sub: %d", code)
	}
	if code, _ := call("GET", "/admin/sessions?sub=alice&app=nope", "t0ken"); code != http.StatusBadRequest {
		t.Fatalf("unknown app: %d", code)
	}
	id := list[0].(map[string]any)["id"].(string)
	if code, _ := call("DELETE", "/admin/sessions/"+id, "t0ken"); code != 200 {
		t.Fatalf("revoke one: %d", code)
	}
	if code, _ := call("DELETE", "/admin/sessions/"+id, "t0ken"); code != http.StatusNotFound {
		t.Fatalf("revoke again: %d", code)
	}
	if code, body := call("DELETE", "/admin/sessions?sub=alice", "t0ken"); code != 200 || body["revoked"] != float64(1) {
		t.Fatalf("revoke the rest: %d %v", code, body)
	}
	me := func(c *http.Cookie) int {
		r := httptest.NewRequest("GET", "https://app.example.com/auth/me", nil)
		r.Header.Set("X-CSRF", "1")
		r.AddCookie(c)
		return serve(s, r).Code
	}
	if me(alice1) != http.StatusUnauthorized || me(bob) != http.StatusOK {
		t.Fatalf("after revoking alice: alice %d, bob %d", me(alice1), me(bob))
	}
}
