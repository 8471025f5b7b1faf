package devidp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

func TestLoginPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	resp, err := newBrowser(t).Get(authURL(r, "s", "n", rp.AuthURLOpt(rp.WithURLParam("login_hint", `"><script>alert(1)</script>`))))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Request.URL.Path; got != "/login" {
		t.Errorf("login page path = %q, want /login", got)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "style-src 'nonce-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	f := parseLoginForm(t, resp)
	for _, want := range []string{
		`id="username"`, `id="password"`, `id="login-submit"`, `name="authRequestID"`, `name="csrf"`,
		`<code>alice</code> / <code>alice</code>`, `<code>bob</code> / <code>bob</code>`,
		`&lt;script&gt;`,
	} {
		if !strings.Contains(f.body, want) {
			t.Errorf("login page lacks %q:\n%s", want, f.body)
		}
	}
	if strings.Contains(f.body, "<script>") {
		t.Errorf("login_hint not escaped:\n%s", f.body)
	}
}

func TestLoginWrongPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	browser := newBrowser(t)
	f := openLogin(t, browser, authURL(r, "s", "n"))

	resp := submit(t, browser, f, formValues(f, "alice", "wrong"))
	again := parseLoginForm(t, resp)
	if again.status != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", again.status)
	}
	if !strings.Contains(again.body, "Wrong username or password") || !strings.Contains(again.body, `id="password"`) {
		t.Errorf("wrong password: page does not show the form with an error:\n%s", again.body)
	}
	if again.authRequestID != f.authRequestID {
		t.Errorf("authRequestID changed: %q -> %q", f.authRequestID, again.authRequestID)
	}
	// The user can still log in with the re-rendered form.
	code := codeFrom(t, submit(t, browser, again, formValues(again, "alice", "alice")), "s")
	if code == "" {
		t.Error("no code after a corrected password")
	}
}

func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(v url.Values)
		noJar   bool // a browser without the CSRF cookie
		wantErr int
	}{
		{"missing token", func(v url.Values) { v.Del("csrf") }, false, http.StatusForbidden},
		{"wrong token", func(v url.Values) { v.Set("csrf", "AAAA"+v.Get("csrf")[4:]) }, false, http.StatusForbidden},
		{"token of another auth request", nil, false, http.StatusForbidden},
		{"no CSRF cookie", nil, true, http.StatusForbidden},
	}
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			browser := newBrowser(t)
			f := openLogin(t, browser, authURL(r, "s", "n"))
			v := formValues(f, "alice", "alice")
			if tc.mutate != nil {
				tc.mutate(v)
			}
			if tc.name == "token of another auth request" {
				other := openLogin(t, browser, authURL(r, "s2", "n2"))
				v.Set("csrf", other.csrf)
			}
			poster := browser
			if tc.noJar {
				poster = &http.Client{CheckRedirect: browser.CheckRedirect}
			}
			resp := submit(t, poster, f, v)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantErr {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, tc.wantErr, body)
			}
			if _, err := resp.Location(); err == nil {
				t.Errorf("rejected login redirected to %s", resp.Header.Get("Location"))
			}
			// The untouched form still works afterwards.
			if code := codeFrom(t, submit(t, browser, f, formValues(f, "alice", "alice")), "s"); code == "" {
				t.Error("no code after a valid submission")
			}
		})
	}
}

func TestLoginUnknownRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, err := http.NewRequest(method, e.p.Issuer()+"/login?authRequestID=nope", strings.NewReader("authRequestID=nope"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s unknown auth request: status %d, want 400", method, resp.StatusCode)
		}
	}
}

func TestSingleSignOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	other := e.newRP(t, otherClientID, otherSecret, testScopes)
	browser := newBrowser(t)

	// prompt=none without a session: login_required at the redirect URI.
	resp, err := browser.Get(authURL(r, "s0", "n0", rp.WithPrompt(oidc.PromptNone)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || loc.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none without session: location %v (err %v), want error=login_required", loc, err)
	}

	first := loginAndExchange(t, browser, r, "alice", "alice")

	tests := []struct {
		name     string
		rp       rp.RelyingParty
		opts     []rp.AuthURLOpt
		wantForm bool
	}{
		{"second client, no prompt", other, nil, false},
		{"prompt=none", r, []rp.AuthURLOpt{rp.WithPrompt(oidc.PromptNone)}, false},
		{"prompt=login", r, []rp.AuthURLOpt{rp.WithPrompt(oidc.PromptLogin)}, true},
		{"login_hint of another user", r, []rp.AuthURLOpt{rp.AuthURLOpt(rp.WithURLParam("login_hint", "bob"))}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := browser.Get(authURL(tc.rp, "s1", "n1", tc.opts...))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantForm {
				f := parseLoginForm(t, resp)
				if f.status != http.StatusOK || f.csrf == "" {
					t.Fatalf("want the login form, got status %d:\n%s", f.status, f.body)
				}
				return
			}
			code := codeFrom(t, resp, "s1")
			tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "n1"), code, tc.rp, rp.WithCodeVerifier(testCodeVerifer))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if got, want := tokens.IDTokenClaims.Claims["sid"], first.IDTokenClaims.Claims["sid"]; got != want {
				t.Errorf("sid = %v, want the same OP session %v", got, want)
			}
		})
	}

	t.Run("disabled", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.DisableSSO = true })
		r := e.newRP(t, testClientID, testSecret, testScopes)
		browser := newBrowser(t)
		loginAndExchange(t, browser, r, "alice", "alice")
		openLogin(t, browser, authURL(r, "s", "n"))
	})
}

func TestIssuerWithPath(t *testing.T) {
	t.Parallel()
	// The provider is mounted below /idp on a server that serves other
	// things too.
	srv := httptest.NewUnstartedServer(nil)
	p, err := New(Config{
		Issuer:  "http://" + srv.Listener.Addr().String() + "/idp",
		Clients: []Client{{ID: testClientID, Secret: testSecret, RedirectURIs: []string{testRedirect}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/idp/", p)
	mux.Handle("/", http.NotFoundHandler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)

	r, err := rp.NewRelyingPartyOIDC(t.Context(), p.Issuer(), testClientID, testSecret, testRedirect, testScopes,
		rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return "n" })))
	if err != nil {
		t.Fatalf("discovery below a path: %v", err)
	}
	browser := newBrowser(t)
	f := openLogin(t, browser, authURL(r, "s", "n"))
	if !strings.HasSuffix(f.action, "/idp/login") {
		t.Errorf("form action = %q, want .../idp/login", f.action)
	}
	code := codeFrom(t, submit(t, browser, f, formValues(f, "alice", "alice")), "s")
	if _, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), code, r, rp.WithCodeVerifier(testCodeVerifer)); err != nil {
		t.Fatalf("exchange below a path: %v", err)
	}
}
