package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/devidp"
	"github.com/bff-dev/bff/internal/server"
	"github.com/bff-dev/bff/internal/session"
)

const (
	appName    = "bench"
	clientID   = "bff-bench"
	cookieName = "bff" // the default name of a non-Secure cookie
	csrfHeader = "X-CSRF"
	redisURL   = "redis://127.0.0.1:6379/0"
)

// store is a session store shared by every replica of a stack.
type store struct {
	name    string
	backend session.Backend
	cookies scs.Store
	keys    *session.Keyring
	// pool and prefix are set for Redis.
	pool   *redis.Pool
	prefix string
}

func newMemoryStore(tb testing.TB) *store {
	tb.Helper()
	mem := session.NewMemory(nil)
	return &store{name: "memory", backend: mem, cookies: mem.CookieStore(), keys: newKeyring(tb)}
}

func newKeyring(tb testing.TB) *session.Keyring {
	tb.Helper()
	keys, err := session.NewKeyring([][]byte{session.RandomKey()})
	if err != nil {
		tb.Fatalf("keyring: %v", err)
	}
	return keys
}

// newRedisStore connects to the local Redis under a fresh key prefix, whose
// keys are deleted at cleanup. It returns an error (for a skip message)
// when Redis does not answer.
func newRedisStore(tb testing.TB) (*store, error) {
	tb.Helper()
	pool, err := session.NewRedisPool(session.RedisOptions{URL: redisURL})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	prefix := "bffbench:" + randomHex(8) + ":"
	backend := session.NewRedis(pool, prefix)
	if err := backend.Ping(ctx); err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("redis at %s unreachable: %w", redisURL, err)
	}
	tb.Cleanup(func() {
		if n, err := deletePrefix(pool, prefix); err != nil {
			tb.Errorf("clean up redis prefix %s (%d keys deleted): %v", prefix, n, err)
		}
		_ = pool.Close()
	})
	return &store{
		name: "redis", backend: backend, cookies: session.NewRedisCookieStore(pool, prefix),
		keys: newKeyring(tb), pool: pool, prefix: prefix,
	}, nil
}

// redisKeys lists every key under prefix (SCAN, never KEYS).
func redisKeys(c redis.Conn, prefix string) ([]string, error) {
	var keys []string
	cursor := "0"
	for range 1_000_000 {
		reply, err := redis.Values(c.Do("SCAN", cursor, "MATCH", prefix+"*", "COUNT", 1000))
		if err != nil {
			return keys, err
		}
		batch, err := redis.Strings(reply[1], nil)
		if err != nil {
			return keys, err
		}
		keys = append(keys, batch...)
		if cursor, err = redis.String(reply[0], nil); err != nil || cursor == "0" {
			return keys, err
		}
	}
	return keys, errors.New("SCAN did not finish")
}

// deletePrefix deletes every key under prefix.
func deletePrefix(pool *redis.Pool, prefix string) (int, error) {
	c := pool.Get()
	defer c.Close()
	keys, err := redisKeys(c, prefix)
	n := 0
	for batch := range slices.Chunk(keys, 500) {
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		d, derr := redis.Int(c.Do("DEL", args...))
		n += d
		err = errors.Join(err, derr)
	}
	return n, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// stack is the embedded provider and one or more BFF replicas on loopback,
// sharing a store, with one signed-in session.
type stack struct {
	store     *store
	cfg       *config.Config
	idp       *devidp.Provider
	issuerURL string
	// bffURLs are the replicas (all serve the same app).
	bffURLs []string
	bffs    []*server.Server
	// sessions reads and writes the stored sessions directly, with the
	// settings the replicas use.
	sessions *session.Manager
	// cookie is the session cookie of the signed-in user (alice).
	cookie *http.Cookie
}

// serve serves h on a fresh loopback listener until cleanup, configured as
// `bff serve` configures its public server.
func serve(tb testing.TB, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })
}

func listen(tb testing.TB) (net.Listener, string) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return l, "http://" + l.Addr().String()
}

// startStack starts the provider and replicas BFFs over st, whose API
// prefix /api/ goes to upstream, and signs alice in through the login form.
func startStack(tb testing.TB, st *store, upstream string, replicas int) *stack {
	tb.Helper()
	idpL, issuer := listen(tb)
	var bffLs []net.Listener
	var bffURLs []string
	for range replicas {
		l, u := listen(tb)
		bffLs = append(bffLs, l)
		bffURLs = append(bffURLs, u)
	}
	// Every replica serves the same public URL, as behind a load balancer.
	appURL := bffURLs[0]
	secret := randomHex(16)
	idp, err := devidp.New(devidp.Config{
		Issuer: issuer,
		Clients: []devidp.Client{{
			ID: clientID, Secret: secret,
			RedirectURIs:           []string{appURL + "/auth/callback"},
			PostLogoutRedirectURIs: []string{appURL + "/"},
		}},
	})
	if err != nil {
		tb.Fatalf("dev provider: %v", err)
	}
	serve(tb, idpL, idp)

	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
adminListen: "off"
log: {format: json, level: info}
apps:
  - name: %s
    url: %q
    cookie: {secure: false}
    oidc:
      issuer: %q
      clientID: %q
      clientSecret: %q
    apis:
      - prefix: /api/
        upstream: %q
`, appName, appURL, issuer, clientID, secret, upstream)
	cfg, err := config.Parse([]byte(yaml), config.Source{})
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	s := &stack{store: st, cfg: cfg, idp: idp, issuerURL: issuer, bffURLs: bffURLs}
	for _, l := range bffLs {
		bff := s.newServer(tb, nil)
		s.bffs = append(s.bffs, bff)
		serve(tb, l, bff)
	}
	s.sessions = session.NewManager(session.Settings{
		App: appName, CookieName: cookieName,
		IdleTimeout: cfg.Session.IdleTimeout, AbsoluteLifetime: cfg.Session.AbsoluteLifetime,
	}, st.cookies, st.backend, st.keys)
	s.cookie = login(tb, appURL, "alice", "alice")
	return s
}

// newServer builds a BFF over the stack's store as cmd/bff serve wires it:
// JSON logs (discarded, but formatted), Prometheus metrics and, when
// upstream is nil, the default upstream transport.
func (s *stack) newServer(tb testing.TB, upstream http.RoundTripper) *server.Server {
	tb.Helper()
	bff, err := server.New(s.cfg, server.Deps{
		Logger:  zerolog.New(io.Discard).Level(zerolog.InfoLevel).With().Timestamp().Logger(),
		Backend: s.store.backend, CookieStore: s.store.cookies, Keys: s.store.keys,
		Metrics:           server.NewMetrics(prometheus.NewRegistry()),
		UpstreamTransport: upstream,
	})
	if err != nil {
		tb.Fatalf("bff: %v", err)
	}
	return bff
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// login signs user in as a browser would (GET /auth/login, the provider's
// form, redirects back to the callback) and returns the session cookie.
func login(tb testing.TB, bffURL, user, pass string) *http.Cookie {
	tb.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(bffURL + "/auth/login")
	if err != nil {
		tb.Fatalf("GET /auth/login: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formActionRE.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		tb.Fatalf("login form: status %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		tb.Fatalf("form action %q: %v", m[1], err)
	}
	form := url.Values{"username": {user}, "password": {pass}}
	for _, h := range hiddenRE.FindAllSubmatch(page, -1) {
		form.Set(string(h[1]), html.UnescapeString(string(h[2])))
	}
	resp, err = c.PostForm(action.String(), form)
	if err != nil {
		tb.Fatalf("POST login form: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(bffURL)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == cookieName {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	tb.Fatalf("no %q cookie after login (last response %d at %s)", cookieName, resp.StatusCode, resp.Request.URL)
	return nil
}

// expireAccessToken rewrites the stored session so that its access token
// expired a second ago.
func (s *stack) expireAccessToken(tb testing.TB) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, s.bffURLs[0]+"/", nil)
	req.AddCookie(s.cookie)
	rec, err := s.sessions.Load(req)
	if err != nil {
		tb.Fatalf("load session to expire its token: %v", err)
	}
	rec.Expiry = time.Now().Add(-time.Second)
	if err := s.sessions.Save(req.Context(), rec); err != nil {
		tb.Fatalf("save expired token: %v", err)
	}
}

// apiRequest is a proxied call as the SPA makes it.
func (s *stack) apiRequest(tb testing.TB, replica int) *http.Request {
	tb.Helper()
	return s.request(tb, replica, "/api/x")
}

func (s *stack) request(tb testing.TB, replica int, path string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, s.bffURLs[replica]+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set(csrfHeader, "1")
	req.AddCookie(s.cookie)
	return req
}

// upstreamBody is the trivial API's answer.
const upstreamBody = `{"ok":true,"items":[1,2,3],"user":"alice"}` + "\n"

// inProcessRequest is request for calling a handler directly, as from a
// loopback peer.
func (s *stack) inProcessRequest(path string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, s.bffURLs[0]+path, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set(csrfHeader, "1")
	req.AddCookie(s.cookie)
	return req
}

// newUpstream is the trivial API: 200 with a small JSON body.
func newUpstream(tb testing.TB) *httptest.Server {
	tb.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, upstreamBody)
	}))
	tb.Cleanup(up.Close)
	return up
}

// newBareProxy is the baseline: httputil.ReverseProxy to upstream with the
// same upstream transport tuning as the BFF, behind the same http.Server
// settings.
func newBareProxy(tb testing.TB, upstream string) string {
	tb.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: upstreamTransport(),
	}
	l, u := listen(tb)
	serve(tb, l, rp)
	return u
}

// upstreamTransport mirrors the BFF's default upstream transport.
func upstreamTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// cannedUpstream answers every request as the trivial API does, without a
// network: it isolates a proxy handler's own cost.
type cannedUpstream struct{}

func (cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {"application/json"},
			"Content-Length": {strconv.Itoa(len(upstreamBody))},
		},
		Body:          io.NopCloser(strings.NewReader(upstreamBody)),
		ContentLength: int64(len(upstreamBody)),
		Request:       r,
	}, nil
}

// newLoadClient is the load generator's client: enough idle connections
// that parallel requests never re-dial.
func newLoadClient(tb testing.TB) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// do sends req and drains the response, returning its status.
func do(c *http.Client, req *http.Request) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// mustOK sends req once and fails unless it answers 200 (a sanity check
// before measuring).
func mustOK(tb testing.TB, c *http.Client, req *http.Request) {
	tb.Helper()
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: status %d, want 200: %s", req.Method, req.URL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
}
