package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/session"
)

// clock is a movable clock for the BFF: tests jump it forward to make the
// access token expire without sleeping.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time            { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration)   { c.offset.Add(int64(d)) }
func (c *clock) AdvanceTo(t time.Time)     { c.offset.Store(int64(time.Until(t))) }
func (c *clock) Since(t time.Time) float64 { return c.Now().Sub(t).Seconds() }

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testStack struct {
	*Stack
	clock  *clock
	logs   *syncBuffer
	issued *issued
	// sessions reads and writes the BFF's stored sessions directly.
	sessions *session.Manager
}

// issued records every token and code the provider hands out, by watching
// its token-endpoint answers and its redirects back to the BFF.
type issued struct {
	mu                                           sync.Mutex
	AccessTokens, RefreshTokens, IDTokens, Codes []string
}

func (is *issued) snapshot() issued {
	is.mu.Lock()
	defer is.mu.Unlock()
	return issued{AccessTokens: slices.Clone(is.AccessTokens), RefreshTokens: slices.Clone(is.RefreshTokens), IDTokens: slices.Clone(is.IDTokens), Codes: slices.Clone(is.Codes)}
}

func (is *issued) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		is.mu.Lock()
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			IDToken      string `json:"id_token"`
		}
		if json.Unmarshal(body, &tok) == nil {
			for _, p := range []struct {
				v    string
				list *[]string
			}{{tok.AccessToken, &is.AccessTokens}, {tok.RefreshToken, &is.RefreshTokens}, {tok.IDToken, &is.IDTokens}} {
				if p.v != "" {
					*p.list = append(*p.list, p.v)
				}
			}
		}
		if loc, err := url.Parse(rec.Header().Get("Location")); err == nil {
			if c := loc.Query().Get("code"); c != "" {
				is.Codes = append(is.Codes, c)
			}
		}
		is.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

func startStack(t *testing.T, o Options) *testStack {
	t.Helper()
	return startStackWrapped(t, o, nil)
}

// startStackWrapped is startStack with wrap around the provider (after the
// recorder of issued tokens).
func startStackWrapped(t *testing.T, o Options, wrap func(http.Handler) http.Handler) *testStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &clock{}
	logs := &syncBuffer{}
	o.Now = c.Now
	o.Logger = zerolog.New(logs).With().Timestamp().Logger()
	is := &issued{}
	o.WrapIdP = is.wrap
	if wrap != nil {
		o.WrapIdP = func(h http.Handler) http.Handler { return wrap(is.wrap(h)) }
	}
	var mem *session.Memory
	if o.Backend == nil {
		mem = session.NewMemory(c.Now)
		o.Backend, o.CookieStore = mem, mem.CookieStore()
	}
	if o.Keys == nil {
		o.Keys, _ = session.NewKeyring([][]byte{session.RandomKey()})
	}
	st, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(st.Close)
	mgr := session.NewManager(session.Settings{App: AppName, CookieName: "bff", Now: c.Now}, o.CookieStore, o.Backend, o.Keys)
	return &testStack{Stack: st, clock: c, logs: logs, issued: is, sessions: mgr}
}

// expireAccessToken rewrites the browser's stored session so that its
// access token expired a second ago, as time would.
func (st *testStack) expireAccessToken(t *testing.T, b *browser) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, st.BFFURL+"/", nil)
	if c := b.cookie(st, "bff"); c != nil {
		req.AddCookie(c)
	}
	rec, err := st.sessions.Load(req)
	if err != nil {
		t.Fatalf("load session to expire its token: %v", err)
	}
	rec.Expiry = st.clock.Now().Add(-time.Second)
	if err := st.sessions.Save(req.Context(), rec); err != nil {
		t.Fatalf("save expired token: %v", err)
	}
}

// seen is one response the browser received.
type seen struct {
	URL      string
	Status   int
	Header   http.Header
	Body     string
	Location string
}

// browser is an HTTP client that behaves like a browser for our purposes:
// a cookie jar, redirects followed, and every response recorded so tests
// can check that no token ever reached it.
type browser struct {
	t      *testing.T
	client *http.Client
	mu     sync.Mutex
	seen   []seen
}

type recorder struct {
	b    *browser
	next http.RoundTripper
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.b.mu.Lock()
	r.b.seen = append(r.b.seen, seen{URL: req.URL.String(), Status: resp.StatusCode, Header: resp.Header.Clone(), Body: string(body), Location: resp.Header.Get("Location")})
	r.b.mu.Unlock()
	return resp, nil
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.client = &http.Client{Jar: jar, Timeout: 20 * time.Second}
	b.client.Transport = recorder{b: b, next: http.DefaultTransport.(*http.Transport).Clone()}
	return b
}

// noRedirects returns a copy of b that stops at the first response.
func (b *browser) noRedirects() *http.Client {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (b *browser) do(method, u string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatalf("new request %s %s: %v", method, u, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

var csrfHeader = map[string]string{"X-CSRF": "1"}

var (
	actionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submitLogin fills in the provider's login form found in page (at pageURL).
func (b *browser) submitLogin(pageURL, page, user, pass string) (*http.Response, string) {
	b.t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no login form at %s:\n%s", pageURL, page)
	}
	base, _ := url.Parse(pageURL)
	action, err := base.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatalf("form action: %v", err)
	}
	form := url.Values{"username": {user}, "password": {pass}}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	return b.do(http.MethodPost, action.String(), strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
}

// login runs the whole flow from /auth/login to the app page.
func (b *browser) login(st *testStack, user, pass, returnTo string) *http.Response {
	b.t.Helper()
	u := st.BFFURL + "/auth/login"
	if returnTo != "" {
		u += "?returnTo=" + url.QueryEscape(returnTo)
	}
	resp, page := b.do(http.MethodGet, u, nil, map[string]string{"Accept": "text/html"})
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Request.URL.String(), st.BFFURL) {
		return resp // the provider's single sign-on skipped the form
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<form") {
		b.t.Fatalf("login page: status %d\n%s", resp.StatusCode, page)
	}
	resp, body := b.submitLogin(resp.Request.URL.String(), page, user, pass)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("after login: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	return resp
}

type meBody struct {
	Authenticated bool           `json:"authenticated"`
	User          map[string]any `json:"user"`
	Session       struct {
		ExpiresIn     int64 `json:"expiresIn"`
		IdleExpiresIn int64 `json:"idleExpiresIn"`
	} `json:"session"`
	LoginURL  string `json:"loginUrl"`
	LogoutURL string `json:"logoutUrl"`
}

func (b *browser) me(st *testStack) (int, meBody) {
	b.t.Helper()
	resp, body := b.do(http.MethodGet, st.BFFURL+"/auth/me", nil, csrfHeader)
	var m meBody
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		b.t.Fatalf("/auth/me body %q: %v", body, err)
	}
	return resp.StatusCode, m
}

func decodeJSON(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %q: %v", body, err)
	}
	return m
}

func (b *browser) cookie(st *testStack, name string) *http.Cookie {
	u, _ := url.Parse(st.BFFURL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
