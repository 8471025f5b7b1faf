package devstack

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bff-dev/bff/internal/session"
)

// flakyBackend fails record updates while failUpdates > 0.
type flakyBackend struct {
	session.Backend
	failUpdates atomic.Int32
}

func (f *flakyBackend) Update(ctx context.Context, id string, prev int64, s session.Stored, ttl time.Duration) error {
	if f.failUpdates.Add(-1) >= 0 {
		return session.ErrUnavailable
	}
	f.failUpdates.Store(0)
	return f.Backend.Update(ctx, id, prev, s, ttl)
}

// TestRefreshSurvivesStoreFailures: the provider has rotated the refresh
// token, then the store fails to take the new one. A brief hiccup is
// retried; a longer outage answers 503, and the next request stores the
// tokens it already has instead of replaying the rotated refresh token.
func TestRefreshSurvivesStoreFailures(t *testing.T) {
	mem := session.NewMemory(nil)
	fb := &flakyBackend{Backend: mem}
	keys, _ := session.NewKeyring([][]byte{session.RandomKey()})
	st := startStack(t, Options{Backend: fb, CookieStore: mem.CookieStore(), Keys: keys})
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")

	st.expireAccessToken(t, b)
	fb.failUpdates.Store(2) // a hiccup: retried within the request
	resp, body := b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK || st.IdP.Stats().Refreshes != 1 {
		t.Fatalf("store hiccup: %d %s, refreshes %d", resp.StatusCode, body, st.IdP.Stats().Refreshes)
	}

	st.expireAccessToken(t, b)
	fb.failUpdates.Store(1000) // an outage
	resp, _ = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusServiceUnavailable || st.IdP.Stats().Refreshes != 2 {
		t.Fatalf("store down: %d, refreshes %d", resp.StatusCode, st.IdP.Stats().Refreshes)
	}
	fb.failUpdates.Store(0)
	resp, body = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after the outage: %d %s (the rotated refresh token was replayed?)", resp.StatusCode, body)
	}
	if n := st.IdP.Stats().Refreshes; n != 2 {
		t.Fatalf("refreshes = %d, want 2: the kept tokens are stored, no new refresh", n)
	}
	if code, _ := b.me(st); code != http.StatusOK {
		t.Fatalf("session lost: /auth/me %d", code)
	}
}
