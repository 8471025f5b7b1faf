package devstack

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// failingToken wraps the provider so that /oauth/token answers 503 while on.
type failingToken struct{ on atomic.Bool }

func (f *failingToken) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.on.Load() && strings.HasSuffix(r.URL.Path, "/oauth/token") {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TestRefreshFailureKinds: a provider outage keeps the session (503, a later
// request retries); a rejected refresh token ends it (401 JSON).
func TestRefreshFailureKinds(t *testing.T) {
	ft := &failingToken{}
	st := startStackWrapped(t, Options{}, ft.wrap)
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")

	st.expireAccessToken(t, b)
	ft.on.Store(true)
	resp, body := b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusServiceUnavailable || decodeJSON(t, body)["error"] != "refresh_unavailable" {
		t.Fatalf("provider down: %d %s, want 503 refresh_unavailable", resp.StatusCode, body)
	}
	if code, _ := b.me(st); code != http.StatusOK {
		t.Fatalf("session lost on a transient provider failure: /auth/me %d", code)
	}
	ft.on.Store(false)
	resp, body = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK || st.IdP.Stats().Refreshes != 1 {
		t.Fatalf("retry after the outage: %d %s, refreshes %d", resp.StatusCode, body, st.IdP.Stats().Refreshes)
	}

	// The provider no longer knows the refresh token: invalid_grant.
	req, _ := http.NewRequest(http.MethodGet, st.BFFURL+"/", nil)
	req.AddCookie(b.cookie(st, "bff"))
	rec, err := st.sessions.Load(req)
	if err != nil {
		t.Fatal(err)
	}
	rec.RefreshToken = "revoked-or-unknown"
	rec.Expiry = st.clock.Now()
	if err := st.sessions.Save(req.Context(), rec); err != nil {
		t.Fatal(err)
	}
	resp, body = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusUnauthorized || decodeJSON(t, body)["error"] != "unauthenticated" {
		t.Fatalf("invalid_grant: %d %s, want 401 unauthenticated", resp.StatusCode, body)
	}
	if code, _ := b.me(st); code != http.StatusUnauthorized {
		t.Fatalf("session survived invalid_grant: /auth/me %d", code)
	}
	if !strings.Contains(st.logs.String(), `"audit":"refresh_failure"`) {
		t.Fatal("no refresh_failure audit event")
	}
}

// TestBackChannelLogoutFromProvider: the provider ends the user's sessions
// (as an admin or another app would) and the BFF session ends with it.
func TestBackChannelLogoutFromProvider(t *testing.T) {
	st := startStack(t, Options{})
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")
	_, m := b.me(st)
	sub, _ := m.User["sub"].(string)
	if err := st.IdP.EndUserSessions(t.Context(), sub); err != nil {
		t.Fatalf("EndUserSessions: %v", err)
	}
	if s := st.IdP.Stats(); s.BackChannelSent != 1 || s.BackChannelFailed != 0 {
		t.Fatalf("back-channel deliveries: %+v", s)
	}
	if code, _ := b.me(st); code != http.StatusUnauthorized {
		t.Fatalf("/auth/me after back-channel logout = %d, want 401", code)
	}
	if !strings.Contains(st.logs.String(), `"audit":"backchannel_logout"`) {
		t.Fatal("no backchannel_logout audit event")
	}
}
