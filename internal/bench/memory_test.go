package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"

	"github.com/bff-dev/bff/internal/session"
)

// Sessions created per measurement.
const (
	memorySessions = 2000
	redisSessions  = 500
)

// BenchmarkSessionMemory measures what one session costs the store (SPEC
// §8: ≤ 4 KiB) with ZITADEL-size tokens: a 1200-byte access JWT, a
// 1500-byte ID token, a 100-byte refresh token and ten /auth/me claims.
// Every session has its own user and provider session, so each brings its
// own sub and sid index entries (the worst case). Sessions are created with
// session.Manager.Start, as the callback does.
//
//   - memory: the Go heap after GC, before and after memorySessions
//     sessions, over their number (B/session); one op is one batch;
//   - redis: MEMORY USAGE (SAMPLES 0) of every key the sessions left under
//     a fresh prefix, in total and by kind (record, scs cookie mapping,
//     indexes); one op is one batch of redisSessions.
//
// record-B is the sealed record the store keeps per session, for scale.
func BenchmarkSessionMemory(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		keys := newKeyring(b)
		var total float64
		var size int
		b.ResetTimer()
		for range b.N {
			mem := session.NewMemory(nil)
			mgr := benchManager(mem.CookieStore(), mem, keys)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := range memorySessions {
				startSession(b, mgr, i)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			total += float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / memorySessions
			size = recordSize(b, mem, startSession(b, mgr, memorySessions))
		}
		b.StopTimer()
		b.ReportMetric(total/float64(b.N), "B/session")
		b.ReportMetric(float64(size), "record-B")
	})

	b.Run("redis", func(b *testing.B) {
		st, err := newRedisStore(b)
		if err != nil {
			b.Skipf("no Redis: %v", err)
		}
		c := st.pool.Get()
		defer c.Close()
		byKind := map[string]float64{}
		var size int
		b.ResetTimer()
		for n := range b.N {
			prefix := fmt.Sprintf("%sm%d:", st.prefix, n)
			backend := session.NewRedis(st.pool, prefix)
			mgr := benchManager(session.NewRedisCookieStore(st.pool, prefix), backend, st.keys)
			for i := range redisSessions {
				id := startSession(b, mgr, i)
				if i == 0 {
					size = recordSize(b, backend, id)
				}
			}
			usage, err := memoryUsage(c, prefix)
			if err != nil {
				b.Fatalf("MEMORY USAGE under %s: %v", prefix, err)
			}
			for kind, bytes := range usage {
				byKind[kind] += float64(bytes) / redisSessions
			}
			if _, err := deletePrefix(st.pool, prefix); err != nil {
				b.Fatalf("delete %s: %v", prefix, err)
			}
		}
		b.StopTimer()
		var sum float64
		for kind, v := range byKind {
			sum += v
			b.ReportMetric(v/float64(b.N), kind+"-B/session")
		}
		b.ReportMetric(sum/float64(b.N), "B/session")
		b.ReportMetric(float64(size), "record-B")
	})
}

// benchManager is a Manager of the bench app over the given store.
func benchManager(cookies scs.Store, backend session.Backend, keys *session.Keyring) *session.Manager {
	return session.NewManager(session.Settings{App: appName, CookieName: cookieName}, cookies, backend, keys)
}

// startSession starts session i as the login callback does and returns
// its record ID.
func startSession(b *testing.B, mgr *session.Manager, i int) string {
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/auth/callback", nil)
	rec := zitadelRecord(i)
	if err := mgr.Start(httptest.NewRecorder(), req, rec); err != nil {
		b.Fatalf("start session %d: %v", i, err)
	}
	return rec.ID
}

// recordSize is the size of the sealed record id as the backend keeps it.
func recordSize(b *testing.B, backend session.Backend, id string) int {
	st, err := backend.Get(context.Background(), id)
	if err != nil {
		b.Fatalf("read back record: %v", err)
	}
	return len(st.Data)
}

// memoryUsage sums MEMORY USAGE of every key under prefix by kind: the
// first segment after the prefix (rec, scs, idx, …).
func memoryUsage(c redis.Conn, prefix string) (map[string]int64, error) {
	keys, err := redisKeys(c, prefix)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := c.Send("MEMORY", "USAGE", k, "SAMPLES", 0); err != nil {
			return nil, err
		}
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, k := range keys {
		n, err := redis.Int64(c.Receive())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, prefix), ":")
		out[kind] += n
	}
	return out, nil
}

// zitadelRecord is session i as a ZITADEL login leaves it: an 18-digit user
// ID, a V2_ session ID, JWT access and ID tokens of typical size, an opaque
// refresh token and the ten claims /auth/me shows.
func zitadelRecord(i int) *session.Record {
	sub := fmt.Sprintf("%018d", 280000000000000000+i)
	return &session.Record{
		Subject: sub,
		SID:     "V2_" + randomB64(24),
		Nonce:   randomB64(32),
		Claims: session.NewClaims(map[string]any{
			"sub":                sub,
			"name":               "Alice Example",
			"given_name":         "Alice",
			"family_name":        "Example",
			"email":              fmt.Sprintf("alice%d@example.com", i),
			"email_verified":     true,
			"preferred_username": fmt.Sprintf("alice%d@example.com", i),
			"locale":             "en",
			"updated_at":         float64(1767225600),
			"roles":              []any{"admin", "user"},
		}),
		IDToken:      fakeJWT(1500, sub),
		AccessToken:  fakeJWT(1200, sub),
		RefreshToken: randomB64(75), // 100 characters
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(12 * time.Hour),
	}
}

// fakeJWT is a JWS compact serialisation of exactly n characters shaped
// like a ZITADEL token: an RS256 header, a JSON payload with ZITADEL's
// claims (padded with a metadata claim of random base64) and a 2048-bit
// signature. It is sealed, never verified.
func fakeJWT(n int, sub string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"RS256","kid":"280000000000000001","typ":"JWT"}`))
	sig := randomB64(256)
	now := time.Now().Unix()
	claims := map[string]any{
		"iss": "https://example-abc123.zitadel.cloud", "sub": sub,
		"aud": []string{"280000000000000002", "280000000000000003"},
		"exp": now + 43200, "iat": now, "auth_time": now, "nbf": now,
		"amr": []string{"pwd"}, "azp": "280000000000000002", "client_id": "280000000000000002",
		"sid": "V2_280000000000000004", "jti": "V2_280000000000000005-at_280000000000000006",
		"urn:zitadel:iam:org:project:roles": map[string]any{
			"admin": map[string]string{"280000000000000007": "example.zitadel.cloud"},
		},
		"urn:zitadel:iam:user:resourceowner:id":   "280000000000000007",
		"urn:zitadel:iam:user:resourceowner:name": "Example",
	}
	// Pad with a metadata claim until the payload fills n, then cut it to
	// the exact length (the JSON's tail; nobody parses it).
	room := n - len(header) - len(sig) - 2
	var payload string
	for pad := 0; len(payload) < room && pad < 4*n; pad += (room-len(payload))*3/4 + 1 {
		if pad > 0 {
			claims["urn:zitadel:iam:user:metadata"] = map[string]string{"k": randomB64(pad)[:pad]}
		}
		plain, _ := json.Marshal(claims)
		payload = enc.EncodeToString(plain)
	}
	return header + "." + payload[:room] + "." + sig
}

// randomB64 is n random bytes, base64url without padding.
func randomB64(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}
