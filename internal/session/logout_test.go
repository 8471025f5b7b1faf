package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// takeBackend fails Take with ErrUnavailable while down is set.
type takeBackend struct {
	Backend
	down bool
}

func (b *takeBackend) Take(ctx context.Context, key string) ([]byte, error) {
	if b.down {
		return nil, ErrUnavailable
	}
	return b.Backend.Take(ctx, key)
}

func stashCookie(t *testing.T, m *Manager, idToken string) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.StashLogout(w, httptest.NewRequest("POST", "https://app.example.com/auth/logout", nil), idToken); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == m.logoutCookieName() {
			return c
		}
	}
	t.Fatal("no logout cookie")
	return nil
}

func TestLogoutStash(t *testing.T) {
	t.Parallel()
	eachStore(t, func(s *Settings) { s.CookieDomain = "example.com"; s.CookieName = "__Secure-bff" }, func(t *testing.T, h *harness) {
		c := stashCookie(t, h.m, "id.token.x")
		if c.Name != "__Host-bff-logout" || c.Domain != "" || !c.HttpOnly || !c.Secure || c.Path != "/" {
			t.Fatalf("logout cookie %+v: want host-only __Host-, HttpOnly, Secure", c)
		}
		take := func(cookies ...*http.Cookie) (string, error) {
			r := httptest.NewRequest("GET", "https://app.example.com/auth/logout/continue", nil)
			for _, c := range cookies {
				r.AddCookie(c)
			}
			return h.m.TakeLogout(httptest.NewRecorder(), r)
		}
		// A planted cookie of the same name sent first does not shadow it.
		planted := &http.Cookie{Name: c.Name, Value: "planted"}
		if tok, err := take(planted, c); err != nil || tok != "id.token.x" {
			t.Fatalf("TakeLogout with a planted cookie first: %q %v", tok, err)
		}
		if _, err := take(c); !errors.Is(err, ErrNoLogout) {
			t.Fatalf("second TakeLogout: %v, want ErrNoLogout (one use)", err)
		}

		// With the store down the cookie stays, and the logout can go on later.
		tb := &takeBackend{Backend: h.backend, down: true}
		m := NewManager(h.set, h.cookies, tb, h.keys)
		c = stashCookie(t, m, "id.token.y")
		r := httptest.NewRequest("GET", "https://app.example.com/auth/logout/continue", nil)
		r.AddCookie(c)
		w := httptest.NewRecorder()
		if _, err := m.TakeLogout(w, r); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("store down: %v", err)
		}
		if len(w.Result().Cookies()) != 0 {
			t.Fatal("store down: the logout cookie was cleared")
		}
		tb.down = false
		w = httptest.NewRecorder()
		if tok, err := m.TakeLogout(w, r); err != nil || tok != "id.token.y" {
			t.Fatalf("after the outage: %q %v", tok, err)
		}
	})
}

// TestStartDiscardsPendingLogout: a login after an interrupted logout
// drops the continuation, so it cannot end the new session.
func TestStartDiscardsPendingLogout(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		c := stashCookie(t, h.m, "id.token.z")
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "https://app.example.com/auth/callback", nil)
		r.AddCookie(c)
		if err := h.m.Start(w, r, &Record{Subject: "u", AccessToken: "a", Expiry: h.clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		cleared := false
		for _, sc := range w.Result().Cookies() {
			if sc.Name == c.Name && sc.MaxAge < 0 {
				cleared = true
			}
		}
		if !cleared {
			t.Fatal("login kept the pending logout cookie")
		}
		r2 := httptest.NewRequest("GET", "https://app.example.com/auth/logout/continue", nil)
		r2.AddCookie(c)
		if _, err := h.m.TakeLogout(httptest.NewRecorder(), r2); !errors.Is(err, ErrNoLogout) {
			t.Fatalf("pending logout survived the login: %v", err)
		}
	})
}

func TestOwnsCookie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "memory", func(s *Settings) { s.CookieName = "__Secure-bff"; s.CookieDomain = "example.com" })
	for name, want := range map[string]bool{
		"__Secure-bff": true, "__Secure-bff-x": true, "__Host-bff-logout": true, "__Host-bff-tx-abc": true,
		"__Host-bffx": false, "bff": false, "theme": false,
	} {
		if got := h.m.OwnsCookie(name); got != want {
			t.Errorf("OwnsCookie(%q) = %v, want %v", name, got, want)
		}
	}
	if !strings.HasPrefix(h.m.txCookiePrefix(), "__Host-") {
		t.Fatalf("login cookies %q are not __Host- cookies", h.m.txCookiePrefix())
	}
}
