package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// testRedisURL is the Redis the tests use: BFF_TEST_REDIS_URL (a URL or
// host:port) or redis://127.0.0.1:6379/0.
func testRedisURL() string {
	u := os.Getenv("BFF_TEST_REDIS_URL")
	if u == "" {
		return "redis://127.0.0.1:6379/0"
	}
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	return u
}

// redactedURL shows where a URL points without its userinfo.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// testRedis is a Redis reachable by the tests, with a key prefix of its own.
type testRedis struct {
	pool   *redis.Pool
	prefix string
}

// newTestRedis connects to the test Redis, or skips the test when it is not
// running (fails under CI=true). Every key under the returned prefix is
// deleted when the test ends.
func newTestRedis(t *testing.T) *testRedis {
	t.Helper()
	return openTestRedis(t, testRedisURL())
}

func openTestRedis(t *testing.T, rawURL string) *testRedis {
	t.Helper()
	// Generous read timeout: -race and parallel tests slow the client down.
	pool, err := NewRedisPool(RedisOptions{URL: rawURL, PoolSize: 64, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("NewRedisPool(%s): %v", redactedURL(rawURL), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := NewRedis(pool, "").Ping(ctx); err != nil {
		_ = pool.Close()
		msg := fmt.Sprintf("redis unreachable at %s: %v: start redis on 127.0.0.1:6379 or set BFF_TEST_REDIS_URL", redactedURL(rawURL), err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: Redis is required)", msg)
		}
		t.Skip(msg)
	}
	tr := &testRedis{pool: pool, prefix: "bfftest:" + randomHex(8) + ":"}
	t.Cleanup(func() {
		if err := tr.deleteAll(); err != nil {
			t.Errorf("deleting test keys %s*: %v", tr.prefix, err)
		}
		_ = pool.Close()
	})
	return tr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// keys lists every key under the prefix (SCAN, never KEYS).
func (tr *testRedis) keys() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var out []string
	cursor := "0"
	for {
		v, err := redis.Values(redis.DoContext(c, ctx, "SCAN", cursor, "MATCH", tr.prefix+"*", "COUNT", 1000))
		if err != nil {
			return nil, err
		}
		if len(v) != 2 {
			return nil, fmt.Errorf("SCAN reply has %d elements", len(v))
		}
		if cursor, err = redis.String(v[0], nil); err != nil {
			return nil, err
		}
		ks, err := redis.Strings(v[1], nil)
		if err != nil {
			return nil, err
		}
		out = append(out, ks...)
		if cursor == "0" {
			return out, nil
		}
	}
}

func (tr *testRedis) deleteAll() error {
	ks, err := tr.keys()
	if err != nil || len(ks) == 0 {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	args := make([]any, len(ks))
	for i, k := range ks {
		args[i] = k
	}
	_, err = redis.DoContext(c, ctx, "DEL", args...)
	return err
}

// do runs a raw command, failing the test on error.
func (tr *testRedis) do(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	v, err := tr.try(cmd, args...)
	if err != nil {
		t.Fatalf("redis %s %v: %v", cmd, args, err)
	}
	return v
}

func (tr *testRedis) try(cmd string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := tr.pool.GetContext(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return redis.DoContext(c, ctx, cmd, args...)
}

func TestRedisBackend(t *testing.T) {
	t.Parallel()
	testBackend(t, func(t *testing.T) (Backend, func(time.Duration)) {
		tr := newTestRedis(t)
		// Real time: the TTLs are on the server.
		return NewRedis(tr.pool, tr.prefix), time.Sleep
	})
}

func TestRedisHalfWrittenRecord(t *testing.T) {
	t.Parallel()
	tr := newTestRedis(t)
	r := NewRedis(tr.pool, tr.prefix)
	ctx := context.Background()
	tests := []struct {
		name   string
		fields []any // HSET field value …
		// updateNotFound: Update must say not found (no integer version),
		// not conflict.
		updateNotFound bool
	}{
		{"only data", []any{"d", "sealed"}, true},
		{"no data", []any{"v", "0", "s", "1"}, false},
		{"no seen", []any{"v", "0", "d", "sealed"}, false},
		{"version not a number", []any{"v", "abc", "s", "1", "d", "sealed"}, true},
		{"version empty", []any{"v", "", "s", "1", "d", "sealed"}, true},
		{"version float", []any{"v", "1.5", "s", "1", "d", "sealed"}, true},
		{"seen not a number", []any{"v", "0", "s", "yesterday", "d", "sealed"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "half-" + randomHex(4)
			tr.do(t, "HSET", append([]any{r.recKey(id)}, tt.fields...)...)
			got, err := r.Get(ctx, id)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get of a record with fields %q = %+v, %v; want an error wrapping ErrNotFound", tt.fields, got, err)
			}
			err = r.Update(ctx, id, 0, Stored{Data: []byte("x")}, longTTL)
			if tt.updateNotFound && !errors.Is(err, ErrNotFound) {
				t.Fatalf("Update of a record with fields %q: err = %v, want ErrNotFound", tt.fields, err)
			}
			if err := r.Create(ctx, id, Stored{Data: []byte("x")}, longTTL); !errors.Is(err, ErrExists) {
				t.Fatalf("Create over a half-written record: err = %v, want ErrExists (the key is taken)", err)
			}
		})
	}
	t.Run("touch needs a version", func(t *testing.T) {
		id := "half-" + randomHex(4)
		tr.do(t, "HSET", r.recKey(id), "d", "sealed")
		if err := r.Touch(ctx, id, 5, longTTL); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Touch of a record without version: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("wrong type", func(t *testing.T) {
		id := "str-" + randomHex(4)
		tr.do(t, "SET", r.recKey(id), "not a hash")
		got, err := r.Get(ctx, id)
		if err == nil {
			t.Fatalf("Get of a string key = %+v, nil; want an error", got)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get of a string key: err = %v, want a definite error, not ErrUnavailable", err)
		}
	})
}

// TestRedisUnavailable points a pool at a closed port: every call fails fast
// with ErrUnavailable, which the server answers with 503.
func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	pool, err := NewRedisPool(RedisOptions{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatalf("NewRedisPool: %v", err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	r := NewRedis(pool, "bfftest:down:")
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := r.Get(ctx, "id"); return err }},
		{"Create", func() error { return r.Create(ctx, "id", Stored{Data: []byte("d")}, time.Minute) }},
		{"Update", func() error { return r.Update(ctx, "id", 0, Stored{Data: []byte("d")}, time.Minute) }},
		{"Touch", func() error { return r.Touch(ctx, "id", 1, time.Minute) }},
		{"Delete", func() error { return r.Delete(ctx, "id") }},
		{"IndexAdd", func() error { return r.IndexAdd(ctx, "ix", "id", time.Minute) }},
		{"IndexMembers", func() error { _, err := r.IndexMembers(ctx, "ix"); return err }},
		{"IndexRemove", func() error { return r.IndexRemove(ctx, "ix", "id") }},
		{"PutOnce", func() error { return r.PutOnce(ctx, "k", []byte("v"), time.Minute) }},
		{"Take", func() error { _, err := r.Take(ctx, "k"); return err }},
		{"Lock", func() error {
			unlock, err := r.Lock(ctx, "L", time.Minute)
			if unlock != nil {
				return errors.New("Lock returned an unlock func with its error")
			}
			return err
		}},
		{"Ping", func() error { return r.Ping(ctx) }},
		{"Manager.Load", func() error {
			m := NewManager(Settings{App: "web"}, NewRedisCookieStore(pool, "bfftest:down:"), r, testKeyring(t))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.AddCookie(&http.Cookie{Name: m.CookieName(), Value: "some-token"})
			_, err := m.Load(req)
			return err
		}},
		{"Manager.Start", func() error {
			m := NewManager(Settings{App: "web"}, NewRedisCookieStore(pool, "bfftest:down:"), r, testKeyring(t))
			return m.Start(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil), &Record{Subject: "u"})
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := c.call()
			elapsed := time.Since(start)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want an error wrapping ErrUnavailable", err)
			}
			if elapsed > time.Second {
				t.Fatalf("took %v, want under 1s", elapsed)
			}
		})
	}
}

// TestRedisPoolExhausted: with every connection busy a call gives up after
// the bounded wait instead of hanging, and the pool recovers.
func TestRedisPoolExhausted(t *testing.T) {
	t.Parallel()
	tr := newTestRedis(t)
	pool, err := NewRedisPool(RedisOptions{URL: testRedisURL(), PoolSize: 1})
	if err != nil {
		t.Fatalf("NewRedisPool: %v", err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	r := NewRedis(pool, tr.prefix)
	ctx := context.Background()
	held, err := pool.GetContext(ctx)
	if err != nil {
		t.Fatalf("GetContext: %v", err)
	}
	if _, err := redis.DoContext(held, ctx, "PING"); err != nil {
		t.Fatalf("PING on the held connection: %v", err)
	}
	start := time.Now()
	_, err = r.Get(ctx, "id")
	elapsed := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with the pool exhausted: err = %v, want ErrUnavailable and context.DeadlineExceeded", err)
	}
	if elapsed < acquireTimeout/2 || elapsed > acquireTimeout+500*time.Millisecond {
		t.Fatalf("Get with the pool exhausted took %v, want about %v", elapsed, acquireTimeout)
	}
	_ = held.Close()
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("Ping after the connection came back: %v", err)
	}
}

func TestRedisContext(t *testing.T) {
	t.Parallel()
	tr := newTestRedis(t)
	r := NewRedis(tr.pool, tr.prefix)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"canceled", canceled, context.Canceled},
		{"deadline passed", expired, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Get(tt.ctx, "id")
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Get: err = %v, want %v and ErrUnavailable", err, tt.want)
			}
			if err := r.Create(tt.ctx, "id", Stored{Data: []byte("d")}, longTTL); !errors.Is(err, tt.want) {
				t.Fatalf("Create: err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := r.Get(context.Background(), "id"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after canceled Creates: err = %v, want ErrNotFound", err)
	}
}

func TestRedisKeyLayout(t *testing.T) {
	t.Parallel()
	tr := newTestRedis(t)
	r := NewRedis(tr.pool, tr.prefix)
	ctx := context.Background()
	must(t, "Create", r.Create(ctx, "id1", Stored{Version: 3, Seen: 42, Data: []byte("sealed")}, longTTL))
	must(t, "IndexAdd", r.IndexAdd(ctx, "ix:sub:abc", "id1", longTTL))
	must(t, "PutOnce", r.PutOnce(ctx, "tx:xyz", []byte("v"), longTTL))
	unlock, err := r.Lock(ctx, "lock:id1", longTTL)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	defer unlock()
	tests := []struct{ key, typ string }{
		{tr.prefix + "rec:id1", "hash"},
		{tr.prefix + "idx:ix:sub:abc", "set"},
		{tr.prefix + "val:tx:xyz", "string"},
		{tr.prefix + "lock:lock:id1", "string"},
	}
	for _, tt := range tests {
		if typ, _ := redis.String(tr.do(t, "TYPE", tt.key), nil); typ != tt.typ {
			t.Errorf("TYPE %s = %q, want %q", tt.key, typ, tt.typ)
		}
		pttl, _ := redis.Int64(tr.do(t, "PTTL", tt.key), nil)
		if pttl <= 0 || pttl > longTTL.Milliseconds() {
			t.Errorf("PTTL %s = %d, want in (0, %d]", tt.key, pttl, longTTL.Milliseconds())
		}
	}
	h, _ := redis.StringMap(tr.do(t, "HGETALL", tr.prefix+"rec:id1"), nil)
	if want := map[string]string{"v": "3", "s": "42", "d": "sealed"}; fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("HGETALL rec:id1 = %v, want %v", h, want)
	}
}

// TestRedisTakeScript runs Take through the GET+DEL script used on Redis
// older than 6.2.
func TestRedisTakeScript(t *testing.T) {
	t.Parallel()
	tr := newTestRedis(t)
	r := NewRedis(tr.pool, tr.prefix)
	r.noGetDel.Store(true)
	ctx := context.Background()
	must(t, "PutOnce", r.PutOnce(ctx, "k", []byte("v"), longTTL))
	var won atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			v, err := r.Take(ctx, "k")
			if err == nil && string(v) == "v" {
				won.Add(1)
			} else if !errors.Is(err, ErrNotFound) {
				t.Errorf("Take = %q, %v; want \"v\" or ErrNotFound", v, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := won.Load(); n != 1 {
		t.Fatalf("%d of 20 Takes got the value, want 1", n)
	}
}

// TestRedisDatabaseFromURL: the /db of the URL selects the database.
func TestRedisDatabaseFromURL(t *testing.T) {
	t.Parallel()
	base := newTestRedis(t)
	u, err := url.Parse(testRedisURL())
	if err != nil {
		t.Fatalf("test URL: %v", err)
	}
	db, _ := strconv.Atoi(strings.TrimPrefix(u.Path, "/"))
	u.Path = "/" + strconv.Itoa((db+1)%16)
	other := openTestRedis(t, u.String())
	other.prefix = base.prefix // clean the same prefix in the other database
	r := NewRedis(other.pool, base.prefix)
	must(t, "PutOnce", r.PutOnce(context.Background(), "k", []byte("v"), longTTL))
	if n, _ := redis.Int(base.do(t, "EXISTS", base.prefix+"val:k"), nil); n != 0 {
		t.Fatalf("the key landed in database %d, want %s", db, u.Path)
	}
	if n, _ := redis.Int(other.do(t, "EXISTS", base.prefix+"val:k"), nil); n != 1 {
		t.Fatalf("the key is not in database %s", u.Path)
	}
}

func TestNewRedisPool(t *testing.T) {
	t.Parallel()
	const secret = "s3cret"
	tests := []struct {
		url     string
		opts    RedisOptions
		wantErr string // substring; "" for success
	}{
		{url: "redis://127.0.0.1:6379"},
		{url: "redis://localhost"},
		{url: "redis://host/"},
		{url: "redis://:s3cret@host:6380/2"},
		{url: "rediss://user:s3cret@redis.example.com:6380/0"},
		{url: "redis://[::1]:6379/15"},
		{url: "", wantErr: "empty"},
		{url: "http://:s3cret@host:6379", wantErr: "scheme"},
		{url: "redis:host", wantErr: "//"},
		{url: "redis://:s3cret@", wantErr: "no host"},
		{url: "redis://:s3cret@:6379/0", wantErr: "no host"},
		{url: "redis://:s3cret@host:6379/abc", wantErr: "not a number"},
		{url: "redis://:s3cret@host:6379/1/2", wantErr: "not a number"},
		{url: "redis://:s3cret@host:6379/99999999999999999999", wantErr: "out of range"},
		{url: "redis://:s3cret@host:99999", wantErr: "port"},
		{url: "redis://:s3cret@host:0", wantErr: "port"},
		{url: "redis://:s3cret@host:6379?password=s3cret", wantErr: "query"},
		{url: "redis://:s3cret@host:6379#s3cret", wantErr: "fragment"},
		{url: "redis://:s3cret%zz@host", wantErr: "cannot be parsed"},
		{url: "redis://:s3cret@ho st", wantErr: "cannot be parsed"},
		{url: "redis://s3cret@host:6379/x", wantErr: "not a number"}, // a lone user name is the password
		{url: "redis://:s3cret@host", opts: RedisOptions{PoolSize: -1}, wantErr: "negative"},
		{url: "redis://:s3cret@host", opts: RedisOptions{ReadTimeout: -time.Second}, wantErr: "negative"},
	}
	for _, tt := range tests {
		o := tt.opts
		o.URL = tt.url
		pool, err := NewRedisPool(o)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("NewRedisPool(%q) err = %v, want nil", tt.url, err)
		case tt.wantErr == "" && (pool == nil || pool.MaxActive != 32 || pool.MaxIdle != 32 || !pool.Wait):
			t.Errorf("NewRedisPool(%q) = %+v, want MaxActive=MaxIdle=32, Wait", tt.url, pool)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("NewRedisPool(%q) err = %v, want one containing %q", tt.url, err, tt.wantErr)
		case err != nil && strings.Contains(err.Error(), secret):
			t.Errorf("NewRedisPool(%q) err = %q reveals the password", tt.url, err)
		}
		if pool != nil {
			_ = pool.Close()
		}
	}
}

// TestRedisWrongPassword: a refused AUTH is unavailability, and the error
// does not echo the password.
func TestRedisWrongPassword(t *testing.T) {
	t.Parallel()
	newTestRedis(t) // skip when there is no Redis
	u, err := url.Parse(testRedisURL())
	if err != nil {
		t.Fatalf("test URL: %v", err)
	}
	u.User = url.UserPassword("nobody-"+randomHex(4), "wrong-s3cret")
	pool, err := NewRedisPool(RedisOptions{URL: u.String()})
	if err != nil {
		t.Fatalf("NewRedisPool: %v", err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	err = NewRedis(pool, "bfftest:").Ping(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping with a wrong password: err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "wrong-s3cret") {
		t.Fatalf("error %q reveals the password", err)
	}
}
