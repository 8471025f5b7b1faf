package devstack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEndToEnd drives the whole flow as a browser would, against the real
// embedded provider, BFF and demo API over loopback HTTP.
func TestEndToEnd(t *testing.T) {
	st := startStack(t, Options{})
	b := newBrowser(t)

	// Logged out: /auth/me is 401 with a login URL, never a redirect.
	if code, m := b.me(st); code != http.StatusUnauthorized || m.Authenticated || m.LoginURL != "/auth/login" {
		t.Fatalf("before login: /auth/me = %d %+v, want 401 with loginUrl", code, m)
	}

	// Login lands on the requested page of the app.
	resp := b.login(st, "alice", "alice", "/orders?id=7")
	if got := resp.Request.URL.RequestURI(); got != "/orders?id=7" {
		t.Fatalf("after login landed on %q, want /orders?id=7", got)
	}
	if s := st.IdP.Stats(); s.CodeExchanges != 1 {
		t.Fatalf("code exchanges = %d, want 1", s.CodeExchanges)
	}
	c := b.cookie(st, "bff")
	if c == nil {
		t.Fatal("no session cookie after login")
	}
	oldCookie := c.Value

	code, m := b.me(st)
	if code != http.StatusOK || !m.Authenticated {
		t.Fatalf("/auth/me = %d %+v", code, m)
	}
	if m.User["name"] != "Alice Admin" || m.User["email"] != "alice@example.com" {
		t.Fatalf("user = %v, want Alice Admin <alice@example.com>", m.User)
	}
	if roles, _ := m.User["roles"].([]any); !slices.Contains(roles, any("admin")) {
		t.Fatalf("roles = %v, want admin", m.User["roles"])
	}
	if m.Session.ExpiresIn <= 0 || m.Session.IdleExpiresIn <= 0 || m.LogoutURL != "/auth/logout" {
		t.Fatalf("session info = %+v", m)
	}

	// The API call reaches the upstream with a valid bearer token and
	// without the BFF's cookies or CSRF header.
	resp, body := b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/whoami = %d %s", resp.StatusCode, body)
	}
	if v := resp.Header.Values("X-Content-Type-Options"); len(v) != 1 {
		t.Fatalf("proxied response has X-Content-Type-Options %q, want it once", v)
	}
	var api struct {
		Sub             string    `json:"sub"`
		Roles           []string  `json:"roles"`
		ExpiresAt       time.Time `json:"expiresAt"`
		Path            string    `json:"path"`
		ReceivedCookies []string  `json:"receivedCookies"`
		ReceivedHeaders []string  `json:"receivedHeaders"`
	}
	if err := json.Unmarshal([]byte(body), &api); err != nil {
		t.Fatal(err)
	}
	if api.Sub != m.User["sub"] || !slices.Contains(api.Roles, "admin") || api.Path != "/whoami" {
		t.Fatalf("upstream saw %+v, want sub %v, admin role, path /whoami", api, m.User["sub"])
	}
	for _, name := range api.ReceivedCookies {
		if strings.HasPrefix(name, "bff") {
			t.Fatalf("upstream received BFF cookie %q", name)
		}
	}
	if slices.Contains(api.ReceivedHeaders, "X-Csrf") {
		t.Fatal("upstream received the CSRF header")
	}
	firstExpiry := api.ExpiresAt

	// Force the access token to expire: the next call refreshes it, once.
	st.expireAccessToken(t, b)
	resp, body = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/whoami after expiry = %d %s", resp.StatusCode, body)
	}
	if s := st.IdP.Stats(); s.Refreshes != 1 {
		t.Fatalf("refreshes = %d, want 1", s.Refreshes)
	}
	_ = json.Unmarshal([]byte(body), &api)
	if !api.ExpiresAt.After(firstExpiry) && !api.ExpiresAt.Equal(firstExpiry) {
		t.Fatalf("token after refresh expires %v, before %v", api.ExpiresAt, firstExpiry)
	}
	resp, _ = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if s := st.IdP.Stats(); resp.StatusCode != http.StatusOK || s.Refreshes != 1 {
		t.Fatalf("call with a fresh token: %d, refreshes %d, want 200 and still 1", resp.StatusCode, s.Refreshes)
	}

	// Logout: JSON with a BFF URL that continues to the provider; the ID
	// token for id_token_hint only ever appears in that redirect.
	resp, body = b.do(http.MethodPost, st.BFFURL+"/auth/logout", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout = %d %s", resp.StatusCode, body)
	}
	lo := decodeJSON(t, body)
	endURL, _ := lo["endSessionUrl"].(string)
	if endURL != "/auth/logout/continue" {
		t.Fatalf("endSessionUrl = %q, want /auth/logout/continue", endURL)
	}
	if s := st.IdP.Stats(); s.Revocations != 1 {
		t.Fatalf("revocations = %d, want 1 (refresh token revoked at logout)", s.Revocations)
	}
	cont, err := b.noRedirects().Get(st.BFFURL + endURL)
	if err != nil {
		t.Fatal(err)
	}
	cont.Body.Close()
	eu, err := url.Parse(cont.Header.Get("Location"))
	if err != nil || cont.StatusCode != http.StatusSeeOther || !strings.HasPrefix(eu.String(), st.IssuerURL) {
		t.Fatalf("/auth/logout/continue: %d to %q", cont.StatusCode, eu)
	}
	if eu.Query().Get("id_token_hint") == "" || eu.Query().Get("post_logout_redirect_uri") != st.BFFURL+"/" || eu.Query().Get("state") == "" {
		t.Fatalf("end-session query = %v", eu.Query())
	}
	if again, _ := b.noRedirects().Get(st.BFFURL + endURL); again.Header.Get("Location") != "/" {
		t.Fatalf("second /auth/logout/continue: %q, want the app root (one use)", again.Header.Get("Location"))
	}
	resp, _ = b.do(http.MethodGet, eu.String(), nil, map[string]string{"Accept": "text/html"})
	if resp.Request.URL.Path != "/" || !strings.HasPrefix(resp.Request.URL.String(), st.BFFURL) || resp.StatusCode != http.StatusOK {
		t.Fatalf("after end-session: %d at %s, want the app root", resp.StatusCode, resp.Request.URL)
	}
	if code, _ := b.me(st); code != http.StatusUnauthorized {
		t.Fatalf("/auth/me after logout = %d, want 401", code)
	}
	// The old cookie is dead, even if replayed.
	req, _ := http.NewRequest(http.MethodGet, st.BFFURL+"/auth/me", nil)
	req.Header.Set("X-CSRF", "1")
	req.AddCookie(&http.Cookie{Name: "bff", Value: oldCookie})
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed old cookie: %d, want 401", r2.StatusCode)
	}
	resp, body = b.do(http.MethodGet, st.BFFURL+"/api/whoami", nil, csrfHeader)
	if resp.StatusCode != http.StatusUnauthorized || decodeJSON(t, body)["error"] != "unauthenticated" {
		t.Fatalf("API after logout = %d %s, want 401 unauthenticated", resp.StatusCode, body)
	}

	// Two tabs log in at once: both complete.
	tabs := make([]struct{ url, page string }, 2)
	for i := range tabs {
		resp, page := b.do(http.MethodGet, st.BFFURL+"/auth/login?returnTo=/tab"+string(rune('1'+i)), nil, nil)
		if !strings.Contains(page, "<form") {
			t.Fatalf("tab %d: no login form (%d)", i, resp.StatusCode)
		}
		tabs[i].url, tabs[i].page = resp.Request.URL.String(), page
	}
	for i := range tabs {
		resp, body := b.submitLogin(tabs[i].url, tabs[i].page, "bob", "bob")
		if want := "/tab" + string(rune('1'+i)); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != want {
			t.Fatalf("tab %d: %d at %s, want 200 at %s\n%s", i, resp.StatusCode, resp.Request.URL, want, body)
		}
	}
	if code, m := b.me(st); code != http.StatusOK || m.User["preferred_username"] != "bob" {
		t.Fatalf("after two-tab login: %d %v", code, m.User)
	}

	assertNoTokenLeak(t, b, st)
}

// assertNoTokenLeak checks every response the browser saw: no access,
// refresh or ID token anywhere (the ID token only as id_token_hint in the
// end-session URL), and no authorization code after the callback.
func assertNoTokenLeak(t *testing.T, b *browser, st *testStack) {
	t.Helper()
	secrets := st.issued.snapshot()
	if len(secrets.AccessTokens) == 0 || len(secrets.RefreshTokens) == 0 || len(secrets.IDTokens) == 0 {
		t.Fatalf("provider recorded no tokens: %d access, %d refresh, %d ID", len(secrets.AccessTokens), len(secrets.RefreshTokens), len(secrets.IDTokens))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.seen {
		var hdr strings.Builder
		for k, vs := range s.Header {
			if k == "Location" {
				continue
			}
			hdr.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		exposed := s.Body + "\n" + hdr.String()
		loc := s.Location
		if strings.HasPrefix(loc, st.IssuerURL) && strings.Contains(loc, "end_session") {
			loc = "" // the one allowed place for the ID token
		}
		for _, tok := range secrets.AccessTokens {
			if strings.Contains(exposed+loc+s.URL, tok) {
				t.Fatalf("access token in response to %s", s.URL)
			}
		}
		for _, tok := range secrets.RefreshTokens {
			if strings.Contains(exposed+loc+s.URL, tok) {
				t.Fatalf("refresh token in response to %s", s.URL)
			}
		}
		for _, tok := range secrets.IDTokens {
			if strings.Contains(exposed+loc, tok) {
				t.Fatalf("ID token in response to %s", s.URL)
			}
		}
		if strings.HasPrefix(s.URL, st.BFFURL) && !strings.Contains(s.URL, "/auth/callback") {
			for _, code := range secrets.Codes {
				if strings.Contains(exposed+loc+s.URL, code) {
					t.Fatalf("authorization code after the callback, in %s", s.URL)
				}
			}
		}
	}
	logs := st.logs.String()
	for _, list := range [][]string{secrets.AccessTokens, secrets.RefreshTokens, secrets.IDTokens, secrets.Codes} {
		for _, tok := range list {
			if strings.Contains(logs, tok) {
				t.Fatal("a token or code appears in the logs")
			}
		}
	}
}

// TestCallbackBadInputs gives each bad input its own case.
func TestCallbackBadInputs(t *testing.T) {
	st := startStack(t, Options{})

	// startLogin begins a login and returns the state the BFF generated.
	startLogin := func(b *browser) (state string) {
		resp, _ := b.noRedirects().Get(st.BFFURL + "/auth/login")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("/auth/login = %d", resp.StatusCode)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" || q.Get("response_type") != "code" {
			t.Fatalf("authorization URL lacks PKCE/state/nonce: %s", loc)
		}
		return q.Get("state")
	}
	get := func(b *browser, path string) (*http.Response, string) {
		resp, err := b.noRedirects().Get(st.BFFURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp, sb.String()
	}

	t.Run("missing state restarts login", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := get(b, "/auth/callback?code=abc")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login" {
			t.Fatalf("got %d Location %q, want 303 to /auth/login", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("unknown state restarts login", func(t *testing.T) {
		b := newBrowser(t)
		startLogin(b)
		before := st.IdP.Stats().CodeExchanges
		resp, _ := get(b, "/auth/callback?code=abc&state=not-a-state")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login" {
			t.Fatalf("got %d Location %q, want 303 to /auth/login", resp.StatusCode, resp.Header.Get("Location"))
		}
		if st.IdP.Stats().CodeExchanges != before {
			t.Fatal("a code was redeemed for an unknown state")
		}
	})
	t.Run("replayed callback sends a signed-in user to the app", func(t *testing.T) {
		b := newBrowser(t)
		b.login(st, "bob", "bob", "/")
		var cb string
		for _, s := range b.seen {
			if strings.Contains(s.URL, "/auth/callback?") {
				cb = s.URL
			}
		}
		before := st.IdP.Stats().CodeExchanges
		resp, err := b.noRedirects().Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("replay: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
		}
		if st.IdP.Stats().CodeExchanges != before {
			t.Fatal("replayed callback redeemed the code again")
		}
		if code, _ := b.me(st); code != http.StatusOK {
			t.Fatalf("session lost after replay: %d", code)
		}
	})
	t.Run("state from another browser is refused", func(t *testing.T) {
		victim, attacker := newBrowser(t), newBrowser(t)
		state := startLogin(victim)
		resp, _ := get(attacker, "/auth/callback?code=abc&state="+url.QueryEscape(state))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login" {
			t.Fatalf("foreign state: %d %q, want restart", resp.StatusCode, resp.Header.Get("Location"))
		}
		if code, _ := attacker.me(st); code != http.StatusUnauthorized {
			t.Fatal("attacker got a session")
		}
	})
	t.Run("provider access_denied shows a page with a retry link", func(t *testing.T) {
		b := newBrowser(t)
		state := startLogin(b)
		req, _ := http.NewRequest(http.MethodGet, st.BFFURL+"/auth/callback?error=access_denied&error_description=%3Cscript%3E&state="+url.QueryEscape(state), nil)
		req.Header.Set("Accept", "text/html")
		resp, err := b.noRedirects().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		page := string(raw)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Try again") || !strings.Contains(page, "/auth/login") || strings.Contains(page, "<script>") {
			t.Fatalf("access_denied: %d\n%s", resp.StatusCode, page)
		}
		if !strings.Contains(page, "Request ID") {
			t.Fatal("error page lacks the request ID")
		}
	})
	t.Run("code and error together is an error", func(t *testing.T) {
		b := newBrowser(t)
		state := startLogin(b)
		before := st.IdP.Stats().CodeExchanges
		resp, _ := get(b, "/auth/callback?code=abc&error=server_error&state="+url.QueryEscape(state))
		if resp.StatusCode != http.StatusBadRequest || st.IdP.Stats().CodeExchanges != before {
			t.Fatalf("code+error: %d, exchanges %d→%d", resp.StatusCode, before, st.IdP.Stats().CodeExchanges)
		}
	})
	t.Run("returnTo to another origin falls back to the app root", func(t *testing.T) {
		for _, rt := range []string{"//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
			b := newBrowser(t)
			resp := b.login(st, "bob", "bob", rt)
			if resp.Request.URL.String() != st.BFFURL+"/" {
				t.Fatalf("returnTo %q landed on %s", rt, resp.Request.URL)
			}
		}
	})
	t.Run("missing CSRF header is refused", func(t *testing.T) {
		b := newBrowser(t)
		b.login(st, "bob", "bob", "/")
		for _, c := range []struct{ method, path string }{{"GET", "/auth/me"}, {"GET", "/api/whoami"}, {"POST", "/auth/logout"}} {
			resp, body := b.do(c.method, st.BFFURL+c.path, nil, nil)
			if resp.StatusCode != http.StatusForbidden || decodeJSON(t, body)["error"] != "csrf_header_missing" {
				t.Fatalf("%s %s without CSRF: %d %s", c.method, c.path, resp.StatusCode, body)
			}
		}
		if code, _ := b.me(st); code != http.StatusOK {
			t.Fatal("refused logout ended the session")
		}
	})
	t.Run("expired login transaction restarts login", func(t *testing.T) {
		b := newBrowser(t)
		resp, page := b.do(http.MethodGet, st.BFFURL+"/auth/login", nil, nil)
		st.clock.Advance(11 * time.Minute)
		defer st.clock.AdvanceTo(time.Now())
		before := st.IdP.Stats().CodeExchanges
		// Follow the provider's redirects by hand up to the callback.
		b.client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
			if strings.Contains(req.URL.Path, "/auth/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		defer func() { b.client.CheckRedirect = nil }()
		resp, _ = b.submitLogin(resp.Request.URL.String(), page, "bob", "bob")
		cb := resp.Header.Get("Location")
		if !strings.Contains(cb, "/auth/callback") {
			t.Fatalf("provider did not redirect to the callback: %d %q", resp.StatusCode, cb)
		}
		resp, err := b.noRedirects().Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login" {
			t.Fatalf("expired transaction: %d to %q, want 303 to /auth/login", resp.StatusCode, resp.Header.Get("Location"))
		}
		if st.IdP.Stats().CodeExchanges != before {
			t.Fatal("expired transaction redeemed a code")
		}
		if code, _ := b.me(st); code != http.StatusUnauthorized {
			t.Fatal("expired transaction produced a session")
		}
	})
}

// TestConcurrentRefreshOnce fires concurrent calls at an expiring token.
func TestConcurrentRefreshOnce(t *testing.T) {
	st := startStack(t, Options{})
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")
	st.expireAccessToken(t, b)
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, st.BFFURL+"/api/whoami", nil)
			req.Header.Set("X-CSRF", "1")
			resp, err := b.client.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if got := st.IdP.Stats().Refreshes; got != 1 {
		t.Fatalf("refreshes = %d, want exactly 1", got)
	}
}
