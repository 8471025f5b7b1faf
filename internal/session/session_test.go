package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"
)

// harness is a Manager over one kind of store, with an injected clock.
type harness struct {
	clock   *fakeClock
	backend Backend
	cookies scs.Store
	keys    *Keyring
	set     Settings
	m       *Manager

	// Exactly one of these is set.
	memory   *Memory
	memstore *memstore.MemStore
	redis    *testRedis
	redisB   *Redis
}

// testSettings are production-like settings on clock.
func testSettings(clock *fakeClock) Settings {
	return Settings{
		App:              "web",
		CookieName:       "__Host-bff",
		CookieSecure:     true,
		SameSite:         http.SameSiteLaxMode,
		IdleTimeout:      8 * time.Hour,
		AbsoluteLifetime: 24 * time.Hour,
		LoginTimeout:     10 * time.Minute,
		MaxPendingLogins: 5,
		Now:              clock.Now,
	}
}

func newHarness(t *testing.T, kind string, edit func(*Settings)) *harness {
	t.Helper()
	h := &harness{clock: newFakeClock(), keys: testKeyring(t)}
	switch kind {
	case "memory":
		h.memory = NewMemory(h.clock.Now)
		h.memstore = memstore.NewWithCleanupInterval(0)
		h.backend, h.cookies = h.memory, h.memstore
	case "redis":
		h.redis = newTestRedis(t)
		h.redisB = NewRedis(h.redis.pool, h.redis.prefix)
		h.backend, h.cookies = h.redisB, NewRedisCookieStore(h.redis.pool, h.redis.prefix)
	default:
		t.Fatalf("unknown store %q", kind)
	}
	h.set = testSettings(h.clock)
	if edit != nil {
		edit(&h.set)
	}
	h.m = h.manager(h.set, h.keys)
	return h
}

// manager is another Manager over the same stores.
func (h *harness) manager(set Settings, keys *Keyring) *Manager {
	return NewManager(set, h.cookies, h.backend, keys)
}

// eachStore runs fn against the Memory backend + scs memstore and the Redis
// backend + redisstore, in parallel.
func eachStore(t *testing.T, edit func(*Settings), fn func(t *testing.T, h *harness)) {
	t.Helper()
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, newHarness(t, kind, edit))
		})
	}
}

// rawData is the record's sealed data exactly as stored: HGET rec:{id} d
// on Redis.
func (h *harness) rawData(t *testing.T, id string) []byte {
	t.Helper()
	if h.redis != nil {
		d, err := redis.Bytes(h.redis.try("HGET", h.redisB.recKey(id), "d"))
		if err != nil {
			t.Fatalf("HGET %s d: %v", h.redisB.recKey(id), err)
		}
		return d
	}
	st, err := h.memory.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Memory.Get(%s): %v", id, err)
	}
	return st.Data
}

// rawSeen is the stored last-activity time of record id.
func (h *harness) rawSeen(t *testing.T, id string) time.Time {
	t.Helper()
	st, err := h.backend.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Backend.Get(%s): %v", id, err)
	}
	return time.Unix(st.Seen, 0)
}

// everything returns every key and value the stores hold, for checks that
// nothing is kept in clear.
func (h *harness) everything(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	if h.redis == nil {
		all, err := h.memstore.All()
		if err != nil {
			t.Fatalf("memstore.All: %v", err)
		}
		for k, v := range all {
			out = append(out, []byte(k), v)
		}
		h.memory.mu.Lock()
		defer h.memory.mu.Unlock()
		for k, r := range h.memory.records {
			out = append(out, []byte(k), r.s.Data)
		}
		for k, ix := range h.memory.indexes {
			out = append(out, []byte(k))
			for id := range ix.ids {
				out = append(out, []byte(id))
			}
		}
		for k, v := range h.memory.once {
			out = append(out, []byte(k), v.v)
		}
		return out
	}
	keys, err := h.redis.keys()
	if err != nil {
		t.Fatalf("listing keys: %v", err)
	}
	for _, k := range keys {
		out = append(out, []byte(k))
		typ, _ := redis.String(h.redis.do(t, "TYPE", k), nil)
		var vals [][]byte
		switch typ {
		case "string":
			vals, err = redis.ByteSlices(h.redis.try("MGET", k))
		case "hash":
			vals, err = redis.ByteSlices(h.redis.try("HVALS", k))
		case "set":
			vals, err = redis.ByteSlices(h.redis.try("SMEMBERS", k))
		case "none": // expired meanwhile
		default:
			t.Fatalf("key %s has unexpected type %q", k, typ)
		}
		if err != nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		out = append(out, vals...)
	}
	return out
}

func newRequest(cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

// setCookie is the last Set-Cookie named name in w (later ones win in the
// browser), or nil.
func setCookie(w *httptest.ResponseRecorder, name string) *http.Cookie {
	var last *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			last = c
		}
	}
	return last
}

// start signs rec in on a request carrying cookies and returns the new
// session cookie.
func start(t *testing.T, m *Manager, rec *Record, cookies ...*http.Cookie) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.Start(w, newRequest(cookies...), rec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	c := setCookie(w, m.CookieName())
	if c == nil || c.Value == "" || c.MaxAge <= 0 {
		t.Fatalf("Start set cookie %v, want a live %s cookie; headers %v", c, m.CookieName(), w.Header())
	}
	return c
}

func load(m *Manager, c *http.Cookie) (*Record, error) { return m.Load(newRequest(c)) }

func mustLoad(t *testing.T, m *Manager, c *http.Cookie) *Record {
	t.Helper()
	rec, err := load(m, c)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return rec
}

func wantNoSession(t *testing.T, m *Manager, c *http.Cookie, why string) {
	t.Helper()
	if rec, err := load(m, c); !errors.Is(err, ErrNoSession) {
		t.Fatalf("%s: Load = %+v, %v; want ErrNoSession", why, rec, err)
	}
}

func userRecord(sub, sid string) *Record {
	return &Record{
		Subject: sub, SID: sid,
		Claims:       NewClaims(map[string]any{"email": sub + "@example.com"}),
		AccessToken:  "at-" + sub + "-" + sid,
		RefreshToken: "rt-" + sub + "-" + sid,
		IDToken:      "idt-" + sub + "-" + sid,
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(5 * time.Minute).Truncate(time.Second),
	}
}

func TestManagerStartCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Settings)
	}{
		{"host cookie, secure, lax", nil},
		{"plain name, insecure, strict", func(s *Settings) {
			s.CookieName, s.CookieSecure, s.SameSite = "bff-admin", false, http.SameSiteStrictMode
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, tt.edit, func(t *testing.T, h *harness) {
				in := userRecord("u1", "s1")
				c := start(t, h.m, in)
				if c.Name != h.set.CookieName || !c.HttpOnly || c.Secure != h.set.CookieSecure ||
					c.SameSite != h.set.SameSite || c.Path != "/" || c.Domain != "" {
					t.Fatalf("cookie = %+v, want name %s, HttpOnly, Secure=%v, SameSite=%v, Path=/, no Domain",
						c, h.set.CookieName, h.set.CookieSecure, h.set.SameSite)
				}
				if lifetime := time.Duration(c.MaxAge) * time.Second; lifetime < h.set.AbsoluteLifetime-time.Minute || lifetime > h.set.AbsoluteLifetime+time.Minute {
					t.Fatalf("cookie Max-Age = %v, want about %v", lifetime, h.set.AbsoluteLifetime)
				}
				if in.ID == "" || c.Value == in.ID || strings.Contains(c.Value, in.ID) {
					t.Fatalf("cookie value %q carries the record ID %q", c.Value, in.ID)
				}
				got := mustLoad(t, h.m, c)
				if got.ID != in.ID || got.Subject != "u1" || got.SID != "s1" || got.AccessToken != in.AccessToken ||
					got.RefreshToken != in.RefreshToken || got.IDToken != in.IDToken || got.App != h.set.App ||
					!got.Expiry.Equal(in.Expiry) || got.Claims.Map()["email"] != "u1@example.com" || got.Version != 0 {
					t.Fatalf("Load = %+v, want %+v", got, in)
				}
				if want := h.clock.Now().Add(h.set.AbsoluteLifetime); !got.ExpiresAt.Equal(want) {
					t.Fatalf("ExpiresAt = %v, want %v", got.ExpiresAt, want)
				}
			})
		})
	}
}

func TestManagerLoadWithoutSession(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		if rec, err := h.m.Load(newRequest()); !errors.Is(err, ErrNoSession) {
			t.Fatalf("Load without cookie = %+v, %v; want ErrNoSession", rec, err)
		}
		for _, v := range []string{"", "unknown-token", strings.Repeat("x", 4000)} {
			wantNoSession(t, h.m, &http.Cookie{Name: h.m.CookieName(), Value: v}, fmt.Sprintf("cookie %.20q", v))
		}
	})
}

func TestManagerStartNeverReusesCookie(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		t.Run("live session", func(t *testing.T) {
			first := userRecord("u1", "s1")
			old := start(t, h.m, first)
			second := userRecord("u1", "s2")
			c := start(t, h.m, second, old)
			if c.Value == old.Value {
				t.Fatalf("Start reused the cookie token %q", c.Value)
			}
			if second.ID == first.ID {
				t.Fatalf("Start reused the record ID")
			}
			wantNoSession(t, h.m, old, "old cookie after a new Start")
			if _, err := h.backend.Get(context.Background(), first.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("old record after a new Start: err = %v, want ErrNotFound", err)
			}
			if got := mustLoad(t, h.m, c); got.SID != "s2" {
				t.Fatalf("new cookie loads SID %q, want s2", got.SID)
			}
		})
		t.Run("planted cookie", func(t *testing.T) {
			planted := &http.Cookie{Name: h.m.CookieName(), Value: "attacker-chosen-token"}
			c := start(t, h.m, userRecord("u2", "s3"), planted)
			if c.Value == planted.Value {
				t.Fatalf("Start adopted the planted token")
			}
			wantNoSession(t, h.m, planted, "planted cookie")
		})
	})
}

func TestManagerEnd(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		ctx := context.Background()
		in := userRecord("u1", "s1")
		c := start(t, h.m, in)
		w := httptest.NewRecorder()
		ended, err := h.m.End(w, newRequest(c))
		if err != nil || ended == nil || ended.ID != in.ID || ended.SID != "s1" {
			t.Fatalf("End = %+v, %v; want the record %s", ended, err, in.ID)
		}
		cleared := setCookie(w, h.m.CookieName())
		if cleared == nil || cleared.MaxAge >= 0 || cleared.Value != "" || cleared.Path != "/" {
			t.Fatalf("End set cookie %+v, want an expired %s cookie on Path=/", cleared, h.m.CookieName())
		}
		wantNoSession(t, h.m, c, "cookie after End")
		if _, err := h.backend.Get(ctx, in.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("record after End: err = %v, want ErrNotFound", err)
		}
		for _, k := range h.m.indexKeys(in) {
			if ids, _ := h.backend.IndexMembers(ctx, k); len(ids) != 0 {
				t.Fatalf("index %s after End = %q, want empty", k, ids)
			}
		}

		tests := []struct {
			name    string
			cookies []*http.Cookie
		}{
			{"no cookie", nil},
			{"ended cookie", []*http.Cookie{c}},
			{"unknown cookie", []*http.Cookie{{Name: h.m.CookieName(), Value: "unknown"}}},
		}
		for _, tt := range tests {
			w := httptest.NewRecorder()
			rec, err := h.m.End(w, newRequest(tt.cookies...))
			if rec != nil || err != nil {
				t.Fatalf("%s: End = %+v, %v; want nil, nil", tt.name, rec, err)
			}
			if c := setCookie(w, h.m.CookieName()); c != nil && c.MaxAge >= 0 {
				t.Fatalf("%s: End set a live cookie %+v", tt.name, c)
			}
		}
	})
}

func TestManagerIdleTimeout(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		in := userRecord("u1", "s1")
		c := start(t, h.m, in)
		idle := h.set.IdleTimeout

		h.clock.Advance(idle / 2)
		rec := mustLoad(t, h.m, c)
		if got := h.m.IdleExpiresIn(rec); got != idle/2 {
			t.Fatalf("IdleExpiresIn = %v, want %v", got, idle/2)
		}
		if err := h.m.Touch(context.Background(), rec); err != nil {
			t.Fatalf("Touch: %v", err)
		}
		// Idle is counted from the touch, not from the start.
		h.clock.Advance(idle - time.Second)
		mustLoad(t, h.m, c)
		h.clock.Advance(time.Second)
		wantNoSession(t, h.m, c, "idle for the whole idle timeout")
		if _, err := h.backend.Get(context.Background(), in.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("idle record: err = %v, want deleted (ErrNotFound)", err)
		}
	})
}

func TestManagerAbsoluteLifetime(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		in := userRecord("u1", "s1")
		c := start(t, h.m, in)
		step := h.set.IdleTimeout / 2
		for elapsed := step; elapsed < h.set.AbsoluteLifetime; elapsed += step {
			h.clock.Advance(step)
			rec := mustLoad(t, h.m, c)
			if err := h.m.Touch(context.Background(), rec); err != nil {
				t.Fatalf("Touch at %v: %v", elapsed, err)
			}
			if want := h.set.AbsoluteLifetime - elapsed; h.m.ExpiresIn(rec) != want {
				t.Fatalf("ExpiresIn at %v = %v, want %v", elapsed, h.m.ExpiresIn(rec), want)
			}
		}
		// Active all along, the session still ends at the absolute lifetime.
		h.clock.Advance(h.set.AbsoluteLifetime - h.clock.Now().Sub(in.CreatedAt) - time.Second)
		mustLoad(t, h.m, c)
		h.clock.Advance(time.Second)
		wantNoSession(t, h.m, c, "at the absolute lifetime")
	})
}

func TestManagerTouchRateLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		idle     time.Duration
		interval time.Duration // writes at most this often
	}{
		{8 * time.Hour, time.Minute},
		{5 * time.Minute, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.idle.String(), func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(s *Settings) { s.IdleTimeout = tt.idle }, func(t *testing.T, h *harness) {
				ctx := context.Background()
				in := userRecord("u1", "s1")
				c := start(t, h.m, in)
				t0 := h.clock.Now()

				h.clock.Advance(tt.interval - time.Second)
				rec := mustLoad(t, h.m, c)
				if err := h.m.Touch(ctx, rec); err != nil {
					t.Fatalf("Touch: %v", err)
				}
				if got := h.rawSeen(t, in.ID); !got.Equal(t0) {
					t.Fatalf("Touch after %v wrote Seen=%v, want no write (Seen=%v)", tt.interval-time.Second, got, t0)
				}

				h.clock.Advance(time.Second)
				rec = mustLoad(t, h.m, c)
				if err := h.m.Touch(ctx, rec); err != nil {
					t.Fatalf("Touch: %v", err)
				}
				if got, want := h.rawSeen(t, in.ID), h.clock.Now(); !got.Equal(want) {
					t.Fatalf("Touch after %v: Seen=%v, want %v", tt.interval, got, want)
				}
				if !rec.Seen.Equal(h.clock.Now()) {
					t.Fatalf("rec.Seen = %v, want %v", rec.Seen, h.clock.Now())
				}
				if got := mustLoad(t, h.m, c); got.Version != 0 || got.AccessToken != in.AccessToken {
					t.Fatalf("after Touch: version %d token %q, want version 0 and the same token", got.Version, got.AccessToken)
				}
			})
		})
	}
}

func TestManagerSaveConflict(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		ctx := context.Background()
		c := start(t, h.m, userRecord("u1", "s1"))
		a, b := mustLoad(t, h.m, c), mustLoad(t, h.m, c)

		a.AccessToken, a.RefreshToken = "at-2", "rt-2"
		if err := h.m.Save(ctx, a); err != nil {
			t.Fatalf("first Save: %v", err)
		}
		if a.Version != 1 {
			t.Fatalf("Version after Save = %d, want 1", a.Version)
		}
		b.RefreshToken = "rt-stale"
		if err := h.m.Save(ctx, b); !errors.Is(err, ErrConflict) {
			t.Fatalf("Save of a stale copy: err = %v, want ErrConflict", err)
		}
		got := mustLoad(t, h.m, c)
		if got.RefreshToken != "rt-2" || got.AccessToken != "at-2" || got.Version != 1 {
			t.Fatalf("after the conflict: tokens %q/%q version %d, want at-2/rt-2 version 1", got.AccessToken, got.RefreshToken, got.Version)
		}
		got.RefreshToken = "rt-3"
		if err := h.m.Save(ctx, got); err != nil {
			t.Fatalf("Save after re-reading: %v", err)
		}
		if _, err := h.m.End(httptest.NewRecorder(), newRequest(c)); err != nil {
			t.Fatalf("End: %v", err)
		}
		if err := h.m.Save(ctx, got); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Save of an ended session: err = %v, want ErrNotFound", err)
		}
	})
}

func TestManagerEndBy(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		ctx := context.Background()
		admin := h.set
		admin.App, admin.CookieName = "admin", "__Host-bff-admin"
		other := h.manager(admin, h.keys)
		cookies := map[string]*http.Cookie{
			"A": start(t, h.m, userRecord("u1", "s1")),
			"B": start(t, h.m, userRecord("u1", "s2")),
			"C": start(t, h.m, userRecord("u2", "s3")),
			"D": start(t, other, userRecord("u1", "s1")), // same user, other app
		}
		managers := map[string]*Manager{"A": h.m, "B": h.m, "C": h.m, "D": other}
		steps := []struct {
			sid, sub string
			want     int
			live     string
		}{
			{"s1", "", 1, "BCD"},
			{"", "u1", 1, "CD"},
			{"nope", "", 0, "CD"},
			{"s3", "someone-else", 0, "CD"},
			{"", "", 0, "CD"},
			{"", "u2", 1, "D"},
		}
		for _, s := range steps {
			n, err := h.m.EndBy(ctx, s.sid, s.sub)
			if err != nil || n != s.want {
				t.Fatalf("EndBy(sid=%q, sub=%q) = %d, %v; want %d", s.sid, s.sub, n, err, s.want)
			}
			for name, c := range cookies {
				_, err := load(managers[name], c)
				if live := strings.Contains(s.live, name); live != (err == nil) {
					t.Fatalf("after EndBy(sid=%q, sub=%q): session %s Load err = %v, want live=%v", s.sid, s.sub, name, err, live)
				}
			}
		}
		if n, err := other.EndBy(ctx, "s1", ""); n != 1 || err != nil {
			t.Fatalf("admin EndBy(s1) = %d, %v; want 1", n, err)
		}
	})
}

func TestManagerOtherApp(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		c := start(t, h.m, userRecord("u1", "s1"))
		other := h.set
		other.App = "admin" // same cookie name: a misconfiguration
		wantNoSession(t, h.manager(other, h.keys), c, "another app's cookie")
	})
}

func TestManagerFirstUse(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		ctx := context.Background()
		steps := []struct {
			key  string
			ttl  time.Duration
			want error
		}{
			{"jti-1", time.Hour, nil},
			{"jti-1", time.Hour, ErrExists},
			{"jti-2", 0, nil}, // at least a second
			{"jti-2", time.Hour, ErrExists},
			{"jti-1", time.Hour, ErrExists},
		}
		for i, s := range steps {
			if err := h.m.FirstUse(ctx, s.key, s.ttl); !errors.Is(err, s.want) {
				t.Fatalf("step %d: FirstUse(%q) err = %v, want %v", i, s.key, err, s.want)
			}
		}
	})
}

func TestManagerLock(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		ctx := context.Background()
		unlock, err := h.m.Lock(ctx, "id1", time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if _, err := h.m.Lock(ctx, "id1", time.Minute); !errors.Is(err, ErrConflict) {
			t.Fatalf("second Lock: err = %v, want ErrConflict", err)
		}
		unlock()
		unlock, err = h.m.Lock(ctx, "id1", time.Minute)
		if err != nil {
			t.Fatalf("Lock after unlock: %v", err)
		}
		unlock()
		if err := h.m.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// realisticRecord has ZITADEL-sized tokens: a JWT access token of about
// 1.2 KB, an ID token of about 1.5 KB, a 100-byte opaque refresh token and
// ten claims.
func realisticRecord() *Record {
	claims := map[string]any{
		"sub":                "312909075212468632",
		"name":               "Ada Lovelace",
		"given_name":         "Ada",
		"family_name":        "Lovelace",
		"email":              "ada.lovelace@example.com",
		"email_verified":     true,
		"preferred_username": "ada@example.com",
		"locale":             "en",
		"updated_at":         1735689600,
		"urn:zitadel:iam:org:project:roles": map[string]any{
			"admin": map[string]any{"312909075212468600": "example.com"},
		},
	}
	return &Record{
		Subject:      "312909075212468632",
		SID:          "V1_312909104857416088",
		Claims:       NewClaims(claims),
		Nonce:        randomB64(32),
		AccessToken:  fakeJWT(1200, claims),
		IDToken:      fakeJWT(1500, claims),
		RefreshToken: randomB64(100),
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(12 * time.Hour),
	}
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// fakeJWT is an RS256-shaped JWT of size bytes carrying claims.
func fakeJWT(size int, claims map[string]any) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"312909075212468111","typ":"JWT"}`))
	sigBytes := make([]byte, 256) // a 2048-bit RSA signature
	_, _ = rand.Read(sigBytes)
	sig := base64.RawURLEncoding.EncodeToString(sigBytes)
	padded := map[string]any{}
	for k, v := range claims {
		padded[k] = v
	}
	payload, _ := json.Marshal(padded)
	// Grow a filler claim until the token has the wanted size, as real
	// tokens carry more claims.
	if want := (size - len(header) - len(sig) - 2) * 3 / 4; want > len(payload)+12 {
		padded["jti"] = strings.Repeat("x", want-len(payload)-10)
		payload, _ = json.Marshal(padded)
	}
	return header + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + sig
}

// TestManagerRecordIsSealed: the stores hold neither a token nor the user's
// identifiers in clear.
func TestManagerRecordIsSealed(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		in := realisticRecord()
		c := start(t, h.m, in)
		if err := h.m.FirstUse(context.Background(), "jti-1", time.Hour); err != nil {
			t.Fatalf("FirstUse: %v", err)
		}
		secrets := map[string]string{
			"access token":  in.AccessToken,
			"refresh token": in.RefreshToken,
			"ID token":      in.IDToken,
			"subject":       in.Subject,
			"provider sid":  in.SID,
			"email claim":   in.Claims.Map()["email"].(string),
			"nonce":         in.Nonce,
			"cookie token":  c.Value,
		}
		raw := h.rawData(t, in.ID)
		if len(raw) < len(encodeRecord(in)) {
			t.Fatalf("raw record is %d bytes, shorter than the encoded record (%d)", len(raw), len(encodeRecord(in)))
		}
		for name, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("raw record contains the %s in clear", name)
			}
		}
		for _, blob := range h.everything(t) {
			for name, s := range secrets {
				if bytes.Contains(blob, []byte(s)) {
					t.Errorf("the store holds the %s in clear in %.60q", name, blob)
				}
			}
		}
		// The sealed data is bound to its record: moved to another record
		// it does not open.
		other := userRecord("u9", "s9")
		start(t, h.m, other)
		st, err := h.backend.Get(context.Background(), other.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if err := h.backend.Update(context.Background(), other.ID, st.Version, Stored{Seen: st.Seen, Data: raw}, time.Hour); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if rec, err := h.m.Get(context.Background(), other.ID); !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("Get of a record holding another record's data = %+v, %v; want ErrNoSession wrapping ErrUndecryptable", rec, err)
		}
	})
}

func TestManagerKeyRotation(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		oldKey, newKey := RandomKey(), RandomKey()
		before := h.manager(h.set, testKeyring(t, oldKey))
		rotated := h.manager(h.set, testKeyring(t, newKey, oldKey))
		after := h.manager(h.set, testKeyring(t, newKey))

		c := start(t, before, userRecord("u1", "s1"))
		if got := mustLoad(t, rotated, c); got.Subject != "u1" {
			t.Fatalf("rotated ring: Load subject %q, want u1", got.Subject)
		}
		rec, err := load(after, c)
		if !errors.Is(err, ErrNoSession) || !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("old key removed: Load = %+v, %v; want an error wrapping ErrNoSession and ErrUndecryptable", rec, err)
		}

		// A save under the rotated ring re-seals with the new key.
		c2 := start(t, before, userRecord("u2", "s2"))
		rec2 := mustLoad(t, rotated, c2)
		rec2.AccessToken = "at-refreshed"
		if err := rotated.Save(context.Background(), rec2); err != nil {
			t.Fatalf("Save: %v", err)
		}
		if got := mustLoad(t, after, c2); got.AccessToken != "at-refreshed" {
			t.Fatalf("after re-sealing: access token %q, want at-refreshed", got.AccessToken)
		}
	})
}

// TestRedisEveryKeyExpires: nothing the Manager writes to Redis lives
// forever.
func TestRedisEveryKeyExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "redis", nil)
	ctx := context.Background()
	start(t, h.m, realisticRecord())
	must(t, "BeginLogin", h.m.BeginLogin(httptest.NewRecorder(), newRequest(), &LoginTx{State: "st", Nonce: "n", Verifier: "v"}))
	must(t, "FirstUse", h.m.FirstUse(ctx, "jti", time.Hour))
	unlock, err := h.m.Lock(ctx, "id", time.Minute)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	defer unlock()
	keys, err := h.redis.keys()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	if len(keys) != 7 { // scs, rec, 2 indexes, tx, once, lock
		t.Errorf("Redis holds %d keys %q, want 7", len(keys), keys)
	}
	for _, k := range keys {
		pttl, err := redis.Int64(h.redis.try("PTTL", k))
		if err != nil || pttl <= 0 || pttl > (24*time.Hour+time.Minute).Milliseconds() {
			t.Errorf("PTTL %s = %d, %v; want in (0, 24h]", k, pttl, err)
		}
	}
}

// TestRedisBytesPerSession measures what one signed-in session costs in
// Redis with ZITADEL-sized tokens.
func TestRedisBytesPerSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "redis", nil)
	in := realisticRecord()
	start(t, h.m, in)
	keys, err := h.redis.keys()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	var scsKey string
	var memory, keyBytes int64
	for _, k := range keys {
		if strings.HasPrefix(k, h.redis.prefix+"scs:") {
			scsKey = k
		}
		n, err := redis.Int64(h.redis.try("MEMORY", "USAGE", k, "SAMPLES", 0))
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		memory += n
		keyBytes += int64(len(k) - len(h.redis.prefix) + len("bff:"))
	}
	if scsKey == "" {
		t.Fatalf("no scs key among %q", keys)
	}
	d, _ := redis.Int64(h.redis.do(t, "HSTRLEN", h.redisB.recKey(in.ID), "d"), nil)
	scsValue, _ := redis.Int64(h.redis.do(t, "STRLEN", scsKey), nil)
	plain := encodeRecord(in)
	tokens := len(in.AccessToken) + len(in.IDToken) + len(in.RefreshToken)
	t.Logf("bytes per session: sealed record d = %d B (encoded %d B, of which tokens %d B: AT %d, IDT %d, RT %d; %d claims) + scs value %d B = %d B payload; %d keys, %d B of key names with prefix bff:; Redis MEMORY USAGE total %d B",
		d, len(plain), tokens, len(in.AccessToken), len(in.IDToken), len(in.RefreshToken), len(in.Claims.Map()), scsValue, d+scsValue, len(keys), keyBytes, memory)
	if d != int64(len(plain))+1+4+12+16 {
		t.Fatalf("sealed record is %d B, want the encoded record (%d B) + 33 B of envelope", d, len(plain))
	}
}
