package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoed is what the echo upstream saw.
type echoed struct {
	Method     string
	Host       string
	Path       string // decoded
	RawPath    string
	RequestURI string // as on the wire
	Query      string
	Header     http.Header
	Cookies    []string // the Cookie header values
}

// upstream is a real HTTP server answering with the request it got.
type upstream struct {
	*httptest.Server
	calls atomic.Int32
}

func newEcho(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RequestURI: r.RequestURI,
			Query: r.URL.RawQuery, Header: r.Header, Cookies: r.Header.Values("Cookie"),
		})
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) base(t *testing.T, path string) *url.URL {
	t.Helper()
	b, err := url.Parse(u.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tokens is a TokenSource with a fixed answer.
type tokens struct {
	token string
	ok    bool
	err   error
	calls atomic.Int32
}

func (s *tokens) AccessToken(*http.Request) (string, bool, error) {
	s.calls.Add(1)
	return s.token, s.ok, s.err
}

// errs records what OnError got, and writes the default statuses.
type errs struct {
	mu   sync.Mutex
	list []error
}

func (e *errs) onError(w http.ResponseWriter, r *http.Request, err error) {
	e.mu.Lock()
	e.list = append(e.list, err)
	e.mu.Unlock()
	writeError(w, r, err)
}

func (e *errs) get() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.list...)
}

// only returns the one error recorded, failing otherwise.
func (e *errs) only(t *testing.T) error {
	t.Helper()
	l := e.get()
	if len(l) != 1 {
		t.Fatalf("OnError called %d times (%v), want once", len(l), l)
	}
	return l[0]
}

// setup returns a Handler for prefix /api/ to up with base path basePath,
// with a session token "tok" unless cfg says otherwise, and its error log.
func setup(t *testing.T, up *upstream, basePath string, cfg Config) (*Handler, *errs) {
	t.Helper()
	e := &errs{}
	if cfg.Prefix == "" {
		cfg.Prefix = "/api/"
	}
	if cfg.Upstream == nil {
		cfg.Upstream = up.base(t, basePath)
	}
	if cfg.Tokens == nil {
		cfg.Tokens = &tokens{token: "tok", ok: true}
	}
	if cfg.OnError == nil {
		cfg.OnError = e.onError
	}
	return New(cfg), e
}

// rawRequest parses a request the way net/http's server does, from a
// request line target and "Name: value" header lines.
func rawRequest(t *testing.T, method, target string, headers ...string) (*http.Request, error) {
	t.Helper()
	s := method + " " + target + " HTTP/1.1\r\nHost: app.example.com\r\n"
	for _, h := range headers {
		s += h + "\r\n"
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s + "\r\n")))
	if err != nil {
		return nil, err
	}
	r.RemoteAddr = "203.0.113.9:5555"
	return r, nil
}

func mustRequest(t *testing.T, method, target string, headers ...string) *http.Request {
	t.Helper()
	r, err := rawRequest(t, method, target, headers...)
	if err != nil {
		t.Fatalf("request %s %q: %v", method, target, err)
	}
	return r
}

// serve runs r through h and decodes the echo, if the upstream answered.
func serve(t *testing.T, h http.Handler, r *http.Request) (*httptest.ResponseRecorder, *echoed) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		return w, nil
	}
	var e echoed
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("decode echo %q: %v", w.Body.String(), err)
	}
	return w, &e
}

func TestMethods(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	h, e := setup(t, up, "/", Config{Methods: []string{"GET", "HEAD"}})
	w, got := serve(t, h, mustRequest(t, "POST", "/api/x"))
	if err := e.only(t); !errors.Is(err, ErrMethod) || w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: error %v, status %d; want ErrMethod, 405", err, w.Code)
	}
	if allow := w.Header().Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow = %q, want %q", allow, "GET, HEAD")
	}
	if got != nil || up.calls.Load() != 0 {
		t.Errorf("upstream called %d times, want 0", up.calls.Load())
	}
	if _, got = serve(t, h, mustRequest(t, "GET", "/api/x")); got == nil || got.Method != "GET" {
		t.Errorf("GET: echo %+v, want the upstream to see GET", got)
	}
}

func TestSessionRules(t *testing.T) {
	t.Parallel()
	storeDown := errors.New("session store down")
	for _, tc := range []struct {
		name       string
		require    bool
		src        *tokens
		wantErr    error // nil: proxied
		wantBearer string
	}{
		{"token required and present", true, &tokens{token: "tok", ok: true}, nil, "Bearer tok"},
		{"token required, no session", true, &tokens{}, ErrNoSession, ""},
		{"token required, empty token", true, &tokens{ok: true}, ErrNoSession, ""},
		{"token optional, no session", false, &tokens{}, nil, ""},
		{"token optional, session", false, &tokens{token: "tok", ok: true}, nil, "Bearer tok"},
		{"token source error", true, &tokens{err: storeDown}, storeDown, ""},
		{"token source error, optional", false, &tokens{err: storeDown}, storeDown, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newEcho(t)
			h, e := setup(t, up, "/", Config{RequireToken: tc.require, Tokens: tc.src})
			_, got := serve(t, h, mustRequest(t, "GET", "/api/x", "Authorization: Bearer from-browser"))
			if tc.wantErr != nil {
				// The token source's error is passed on unchanged (==), so the
				// server's one error writer can map it.
				if err := e.only(t); err != tc.wantErr {
					t.Errorf("OnError got %v, want %v", err, tc.wantErr)
				}
				if up.calls.Load() != 0 {
					t.Errorf("upstream called %d times, want 0", up.calls.Load())
				}
				return
			}
			if l := e.get(); len(l) != 0 || got == nil {
				t.Fatalf("errors %v, echo %v: want proxied", l, got)
			}
			if a := got.Header.Get("Authorization"); a != tc.wantBearer {
				t.Errorf("upstream Authorization = %q, want %q", a, tc.wantBearer)
			}
			if n := tc.src.calls.Load(); n != 1 {
				t.Errorf("token source called %d times, want 1", n)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		h, e := setup(t, nil, "", Config{Upstream: mustURL(t, down.URL)})
		w, _ := serve(t, h, mustRequest(t, "GET", "/api/x"))
		if err := e.only(t); !errors.Is(err, ErrUpstream) || w.Code != http.StatusBadGateway {
			t.Errorf("error %v, status %d; want ErrUpstream, 502", err, w.Code)
		}
	})
	t.Run("slow", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 50 * time.Millisecond
		t.Cleanup(tr.CloseIdleConnections)
		h, e := setup(t, nil, "", Config{Upstream: mustURL(t, slow.URL), Transport: tr})
		w, _ := serve(t, h, mustRequest(t, "GET", "/api/x"))
		if err := e.only(t); !errors.Is(err, ErrTimeout) || w.Code != http.StatusGatewayTimeout {
			t.Errorf("error %v, status %d; want ErrTimeout, 504", err, w.Code)
		}
	})
	t.Run("client gone", func(t *testing.T) {
		t.Parallel()
		arrived, release := make(chan struct{}), make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(slow.Close)
		t.Cleanup(func() { close(release) })
		h, e := setup(t, nil, "", Config{Upstream: mustURL(t, slow.URL)})
		ctx, cancel := context.WithCancel(context.Background())
		r := mustRequest(t, "GET", "/api/x").WithContext(ctx)
		done := make(chan *httptest.ResponseRecorder)
		go func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			done <- w
		}()
		<-arrived
		cancel()
		w := <-done
		if err := e.only(t); !errors.Is(err, ErrClientGone) || w.Code != 499 {
			t.Errorf("error %v, status %d; want ErrClientGone, 499", err, w.Code)
		}
	})
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	// No OnError, no Tokens, no Transport: plain statuses, anonymous calls.
	h := New(Config{Prefix: "/api/", Upstream: up.base(t, "/"), Methods: []string{"GET"}})
	for _, tc := range []struct {
		method, target string
		want           int
	}{
		{"GET", "/api/x", http.StatusOK},
		{"GET", "/api/%2e%2e/x", http.StatusBadRequest},
		{"PUT", "/api/x", http.StatusMethodNotAllowed},
	} {
		if w, _ := serve(t, h, mustRequest(t, tc.method, tc.target)); w.Code != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.target, w.Code, tc.want)
		}
	}
	h = New(Config{Prefix: "/api/", Upstream: up.base(t, "/"), RequireToken: true})
	if w, _ := serve(t, h, mustRequest(t, "GET", "/api/x")); w.Code != http.StatusUnauthorized {
		t.Errorf("no token source, token required: status %d, want 401", w.Code)
	}
	if up.calls.Load() != 1 {
		t.Errorf("upstream called %d times, want 1", up.calls.Load())
	}
}

func TestNewRefusesBadWiring(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no upstream", Config{Prefix: "/api/"}},
		{"prefix without trailing slash", Config{Prefix: "/api", Upstream: &url.URL{Scheme: "http", Host: "u"}}},
		{"empty prefix", Config{Upstream: &url.URL{Scheme: "http", Host: "u"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", tc.cfg)
				}
			}()
			New(tc.cfg)
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
