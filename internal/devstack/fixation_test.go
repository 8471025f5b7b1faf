package devstack

import (
	"net/http"
	"net/url"
	"testing"
)

// TestSessionFixation: SPEC §6.4 — a cookie planted before login is never
// promoted, and the session ID changes at login and at logout.
func TestSessionFixation(t *testing.T) {
	st := startStack(t, Options{})
	b := newBrowser(t)
	u, _ := url.Parse(st.BFFURL)
	const planted = "attacker-chosen-session-token-0123456789abcdef"
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "bff", Value: planted, Path: "/"}})

	b.login(st, "alice", "alice", "/")
	first := b.cookie(st, "bff")
	if first == nil || first.Value == planted {
		t.Fatalf("planted cookie promoted to a session: %+v", first)
	}
	// The planted token does not name a session.
	attacker := newBrowser(t)
	attacker.client.Jar.SetCookies(u, []*http.Cookie{{Name: "bff", Value: planted, Path: "/"}})
	if code, _ := attacker.me(st); code != http.StatusUnauthorized {
		t.Fatalf("planted cookie loads a session: %d", code)
	}

	// A second login in the same browser gets a new ID; the old one is dead.
	b.login(st, "alice", "alice", "/")
	second := b.cookie(st, "bff")
	if second == nil || second.Value == first.Value {
		t.Fatal("session ID did not change at login")
	}
	old := newBrowser(t)
	old.client.Jar.SetCookies(u, []*http.Cookie{{Name: "bff", Value: first.Value, Path: "/"}})
	if code, _ := old.me(st); code != http.StatusUnauthorized {
		t.Fatalf("pre-login session still valid after re-login: %d", code)
	}

	// Logout clears the cookie; a new session never reuses the old ID.
	resp, _ := b.do(http.MethodPost, st.BFFURL+"/auth/logout", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if c := b.cookie(st, "bff"); c != nil {
		t.Fatalf("cookie still set after logout: %+v", c)
	}
	b.login(st, "alice", "alice", "/")
	if third := b.cookie(st, "bff"); third == nil || third.Value == second.Value {
		t.Fatal("session ID reused after logout")
	}
}

// TestPendingLoginCap: a browser cannot pile up login transactions; the
// oldest is dropped beyond the cap (5) and the newest still completes.
func TestPendingLoginCap(t *testing.T) {
	st := startStack(t, Options{})
	b := newBrowser(t)
	var last struct{ url, page string }
	for range 8 {
		resp, page := b.do(http.MethodGet, st.BFFURL+"/auth/login", nil, nil)
		last.url, last.page = resp.Request.URL.String(), page
	}
	u, _ := url.Parse(st.BFFURL)
	n := 0
	for _, c := range b.client.Jar.Cookies(u) {
		if len(c.Name) > len("bff-tx-") && c.Name[:7] == "bff-tx-" {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d pending login cookies, want the cap of 5", n)
	}
	resp, _ := b.submitLogin(last.url, last.page, "bob", "bob")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("newest login failed: %d", resp.StatusCode)
	}
	if code, _ := b.me(st); code != http.StatusOK {
		t.Fatalf("/auth/me = %d", code)
	}
}
