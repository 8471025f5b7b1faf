package devstack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/server"
	"github.com/bff-dev/bff/internal/session"
)

// testRedisAddr is host:port of the test Redis: BFF_TEST_REDIS_URL
// (redis://host:port[/db]) or 127.0.0.1:6379.
func testRedisAddr() string {
	if raw := os.Getenv("BFF_TEST_REDIS_URL"); raw != "" {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return "127.0.0.1:6379"
}

// redisPool returns a pool to the test Redis (through addr when given) and a
// unique key prefix whose keys are deleted when the test ends. Without
// Redis the test fails in CI and skips elsewhere.
func redisPool(t *testing.T, addr string) (*redis.Pool, string) {
	t.Helper()
	probe, err := redis.Dial("tcp", testRedisAddr(), redis.DialConnectTimeout(time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required in CI: %v", err)
		}
		t.Skipf("Redis not reachable at %s (%v): start redis on 127.0.0.1:6379 or set BFF_TEST_REDIS_URL", testRedisAddr(), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "bfftest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		defer probe.Close()
		keys, _ := redis.Strings(probe.Do("KEYS", prefix+"*"))
		for _, k := range keys {
			_, _ = probe.Do("DEL", k)
		}
	})
	if addr == "" {
		addr = testRedisAddr()
	}
	pool, err := session.NewRedisPool(session.RedisOptions{URL: "redis://" + addr + "/0", PoolSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return pool, prefix
}

func redisOptions(pool *redis.Pool, prefix string, keys *session.Keyring) Options {
	return Options{Backend: session.NewRedis(pool, prefix), CookieStore: session.NewRedisCookieStore(pool, prefix), Keys: keys}
}

// startReplica serves a second BFF with the first one's configuration and
// its own connections to the same Redis, on http://localhost:<port>.
func startReplica(t *testing.T, st *testStack, pool *redis.Pool, prefix string, keys *session.Keyring) string {
	t.Helper()
	bff, err := server.New(st.Config, server.Deps{
		Logger: zerolog.New(st.logs).With().Str("replica", "B").Logger(), Now: st.clock.Now,
		Backend: session.NewRedis(pool, prefix), CookieStore: session.NewRedisCookieStore(pool, prefix), Keys: keys,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: bff, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return localURL(l)
}

// TestReplicasShareSessions: two BFF instances on one Redis: login through
// A, API through B; 50 concurrent calls split over A and B on an expiring
// token cause exactly one refresh; a back-channel logout delivered to A ends
// the session on B.
func TestReplicasShareSessions(t *testing.T) {
	keys, _ := session.NewKeyring([][]byte{session.RandomKey()})
	poolA, prefix := redisPool(t, "")
	st := startStack(t, redisOptions(poolA, prefix, keys))
	poolB, _ := redisPool(t, "")
	bURL := startReplica(t, st, poolB, prefix, keys)

	br := newBrowser(t)
	br.login(st, "alice", "alice", "/")
	resp, body := br.do(http.MethodGet, bURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"admin"`) {
		t.Fatalf("API through replica B: %d %s", resp.StatusCode, body)
	}

	st.expireAccessToken(t, br)
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := st.BFFURL
			if i%2 == 1 {
				base = bURL
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/api/whoami", nil)
			req.Header.Set("X-CSRF", "1")
			resp, err := br.client.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d (replica %c): %d", i, "AB"[i%2], c)
		}
	}
	if n := st.IdP.Stats().Refreshes; n != 1 {
		t.Fatalf("refreshes across replicas = %d, want exactly 1", n)
	}
	t.Logf("50 concurrent calls over 2 replicas on an expiring token: %d refresh", st.IdP.Stats().Refreshes)

	_, m := br.me(st)
	if err := st.IdP.EndUserSessions(t.Context(), m.User["sub"].(string)); err != nil {
		t.Fatal(err)
	}
	resp, _ = br.do(http.MethodGet, bURL+"/auth/me", nil, csrfHeader)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replica B after back-channel logout at A: %d, want 401", resp.StatusCode)
	}
}

// faultProxy sits between the BFF and Redis; tests stop it (connection
// refused), blackhole it (accepts, never answers) and start it again.
type faultProxy struct {
	t      *testing.T
	addr   string
	target string

	mu        sync.Mutex
	l         net.Listener
	conns     []net.Conn
	blackhole bool
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	p := &faultProxy{t: t, target: target}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.stop)
	return p
}

func (p *faultProxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			hole := p.blackhole
			p.mu.Unlock()
			if hole {
				continue // hold the connection, never answer
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *faultProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *faultProxy) start(blackhole bool) {
	p.stop()
	p.mu.Lock()
	p.blackhole = blackhole
	p.mu.Unlock()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("restart proxy on %s: %v", p.addr, err)
	}
	p.serve(l)
}

// TestRedisDown: with Redis unreachable (refused, or accepting and never
// answering) requests that need a session answer 503 JSON quickly, the
// process stays up, and the same cookie works again once Redis is back.
func TestRedisDown(t *testing.T) {
	proxy := newFaultProxy(t, testRedisAddr())
	pool, prefix := redisPool(t, proxy.addr)
	keys, _ := session.NewKeyring([][]byte{session.RandomKey()})
	st := startStack(t, redisOptions(pool, prefix, keys))
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")
	cookie := b.cookie(st, "bff").Value

	check := func(phase string) {
		t.Helper()
		for _, c := range []struct{ method, path string }{{"GET", "/auth/me"}, {"GET", "/api/whoami"}, {"POST", "/auth/logout"}} {
			start := time.Now()
			resp, body := b.do(c.method, st.BFFURL+c.path, nil, csrfHeader)
			took := time.Since(start)
			if resp.StatusCode != http.StatusServiceUnavailable || decodeJSON(t, body)["error"] != "store_unavailable" {
				t.Fatalf("%s: %s %s = %d %s, want 503 store_unavailable", phase, c.method, c.path, resp.StatusCode, body)
			}
			if took > 2*time.Second {
				t.Fatalf("%s: %s %s took %v to fail", phase, c.method, c.path, took)
			}
			t.Logf("%s: %s %s answered 503 in %v", phase, c.method, c.path, took.Round(time.Millisecond))
		}
	}
	proxy.stop()
	check("redis refused")
	proxy.start(true)
	check("redis not answering")

	proxy.start(false)
	if err := waitFor(func() bool { code, _ := b.me(st); return code == http.StatusOK }); err != nil {
		t.Fatalf("session not back after Redis returned: %v", err)
	}
	if got := b.cookie(st, "bff").Value; got != cookie {
		t.Fatal("cookie changed across the outage")
	}
	resp, body := b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API after Redis returned: %d %s", resp.StatusCode, body)
	}
}

// waitFor polls cond a bounded number of times (stale pooled connections
// may fail once each after an outage).
func waitFor(cond func() bool) error {
	for range 20 {
		if cond() {
			return nil
		}
	}
	return errors.New("condition not met after 20 attempts")
}

// TestCorruptRecordIsNoSession: a record that cannot be decrypted (written
// with a retired key, or damaged) is no session, logged, and never a panic.
func TestCorruptRecordIsNoSession(t *testing.T) {
	pool, prefix := redisPool(t, "")
	keys, _ := session.NewKeyring([][]byte{session.RandomKey()})
	st := startStack(t, redisOptions(pool, prefix, keys))
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")
	conn := pool.Get()
	defer conn.Close()
	recs, err := redis.Strings(conn.Do("KEYS", prefix+"rec:*"))
	if err != nil || len(recs) != 1 {
		t.Fatalf("records: %v %v", recs, err)
	}
	if _, err := conn.Do("HSET", recs[0], "d", "garbage"); err != nil {
		t.Fatal(err)
	}
	if code, _ := b.me(st); code != http.StatusUnauthorized {
		t.Fatalf("/auth/me with a corrupt record = %d, want 401", code)
	}
	if !strings.Contains(st.logs.String(), "unreadable session") {
		t.Fatal("corrupt record not logged")
	}
	if _, err := conn.Do("HDEL", recs[0], "v"); err != nil {
		t.Fatal(err)
	}
	resp, _ := b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API with a half-written record = %d, want 401", resp.StatusCode)
	}
}

// TestExpiredLoginOnRedis: Redis keeps the transaction for its real TTL,
// so the BFF's own clock check must refuse it once the login timeout has
// passed, offering a retry that keeps the return-to path.
func TestExpiredLoginOnRedis(t *testing.T) {
	pool, prefix := redisPool(t, "")
	keys, _ := session.NewKeyring([][]byte{session.RandomKey()})
	st := startStack(t, redisOptions(pool, prefix, keys))
	b := newBrowser(t)
	resp, page := b.do(http.MethodGet, st.BFFURL+"/auth/login?returnTo=/orders", nil, nil)
	b.client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.Contains(req.URL.Path, "/auth/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, _ = b.submitLogin(resp.Request.URL.String(), page, "bob", "bob")
	cb := resp.Header.Get("Location")
	st.clock.Advance(11 * time.Minute)
	req, _ := http.NewRequest(http.MethodGet, cb, nil)
	req.Header.Set("Accept", "text/html")
	before := st.IdP.Stats().CodeExchanges
	resp, err := b.noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "returnTo=%2Forders") {
		t.Fatalf("expired login: %d\n%s", resp.StatusCode, body)
	}
	if st.IdP.Stats().CodeExchanges != before {
		t.Fatal("expired login redeemed the code")
	}
}
