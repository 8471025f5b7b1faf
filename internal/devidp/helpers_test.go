package devidp

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

const (
	testClientID    = "bff"
	testSecret      = "bff-secret"
	otherClientID   = "other"
	otherSecret     = "other-secret"
	rpHost          = "rp.test"
	testRedirect    = "http://" + rpHost + "/callback"
	testPostLogout  = "http://" + rpHost + "/after-logout"
	aliceID         = "250000000000000001"
	bobID           = "250000000000000002"
	testCodeVerifer = "a-code-verifier-that-is-long-enough-0123456789-abcdefghijklmnop"
)

var testScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// receiver is a relying party's back-channel logout endpoint.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
	status int
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.tokens = append(rc.tokens, r.PostForm.Get("logout_token"))
		rc.mu.Unlock()
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.tokens...)
}

// env is a running provider with two clients, both with a back-channel
// logout receiver.
type env struct {
	srv      *httptest.Server
	p        *Provider
	recv     *receiver // for testClientID
	otherRcv *receiver // for otherClientID
}

// newEnv starts the provider on a random loopback port. The listener is
// created first so that its URL can be the issuer.
func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	e := &env{recv: newReceiver(t, http.StatusOK), otherRcv: newReceiver(t, http.StatusOK)}
	e.srv = httptest.NewUnstartedServer(nil)
	cfg := Config{
		Issuer: "http://" + e.srv.Listener.Addr().String(),
		Clients: []Client{
			{
				ID:                     testClientID,
				Secret:                 testSecret,
				RedirectURIs:           []string{testRedirect},
				PostLogoutRedirectURIs: []string{testPostLogout},
				BackChannelLogoutURI:   e.recv.srv.URL + "/backchannel",
			},
			{
				ID:                   otherClientID,
				Secret:               otherSecret,
				RedirectURIs:         []string{testRedirect},
				BackChannelLogoutURI: e.otherRcv.srv.URL + "/backchannel",
			},
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.p = p
	e.srv.Config.Handler = p
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	if e.srv.URL != p.Issuer() {
		t.Fatalf("server URL %q != issuer %q", e.srv.URL, p.Issuer())
	}
	return e
}

type nonceKey struct{}

func withNonce(ctx context.Context, nonce string) context.Context {
	return context.WithValue(ctx, nonceKey{}, nonce)
}

// newRP is a relying party for the client; it expects the nonce found in
// the context.
func (e *env) newRP(t *testing.T, clientID, secret string, scopes []string, opts ...rp.Option) rp.RelyingParty {
	t.Helper()
	opts = append([]rp.Option{rp.WithVerifierOpts(rp.WithNonce(func(ctx context.Context) string {
		n, _ := ctx.Value(nonceKey{}).(string)
		return n
	}))}, opts...)
	r, err := rp.NewRelyingPartyOIDC(t.Context(), e.p.Issuer(), clientID, secret, testRedirect, scopes, opts...)
	if err != nil {
		t.Fatalf("NewRelyingPartyOIDC: %v", err)
	}
	return r
}

// newBrowser is a user agent with a cookie jar that stops at the relying
// party's redirect URI.
func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == rpHost {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// authURL builds an authorization URL with PKCE (S256) and a nonce.
func authURL(r rp.RelyingParty, state, nonce string, opts ...rp.AuthURLOpt) string {
	all := []rp.AuthURLOpt{
		rp.WithCodeChallenge(oidc.NewSHACodeChallenge(testCodeVerifer)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)),
	}
	return rp.AuthURL(state, r, append(all, opts...)...)
}

// loginForm is the parsed login page.
type loginForm struct {
	status        int
	body          string
	action        string
	authRequestID string
	csrf          string
}

var (
	reAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	reID     = regexp.MustCompile(`name="authRequestID" value="([^"]*)"`)
	reCSRF   = regexp.MustCompile(`name="csrf" value="([^"]*)"`)
)

func parseLoginForm(t *testing.T, resp *http.Response) loginForm {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	f := loginForm{status: resp.StatusCode, body: string(b)}
	get := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(f.body); m != nil {
			return html.UnescapeString(m[1])
		}
		return ""
	}
	f.action, f.authRequestID, f.csrf = get(reAction), get(reID), get(reCSRF)
	if f.action != "" && !strings.HasPrefix(f.action, "http") {
		f.action = resp.Request.URL.Scheme + "://" + resp.Request.URL.Host + f.action
	}
	return f
}

// openLogin follows the authorization URL to the login form.
func openLogin(t *testing.T, browser *http.Client, u string) loginForm {
	t.Helper()
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	f := parseLoginForm(t, resp)
	if f.status != http.StatusOK || f.authRequestID == "" || f.csrf == "" {
		t.Fatalf("login form: status %d, authRequestID %q, csrf %q, body:\n%s", f.status, f.authRequestID, f.csrf, f.body)
	}
	return f
}

// submit posts the login form.
func submit(t *testing.T, browser *http.Client, f loginForm, values url.Values) *http.Response {
	t.Helper()
	resp, err := browser.PostForm(f.action, values)
	if err != nil {
		t.Fatalf("POST %s: %v", f.action, err)
	}
	return resp
}

func formValues(f loginForm, username, password string) url.Values {
	return url.Values{
		"authRequestID": {f.authRequestID},
		"csrf":          {f.csrf},
		"username":      {username},
		"password":      {password},
	}
}

// codeFrom reads the authorization response at the relying party's
// redirect URI and checks its state.
func codeFrom(t *testing.T, resp *http.Response, state string) string {
	t.Helper()
	defer resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("no redirect (status %d): %s", resp.StatusCode, b)
	}
	if loc.Host != rpHost {
		t.Fatalf("redirected to %s, want the relying party", loc)
	}
	q := loc.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error %q: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state {
		t.Fatalf("state = %q, want %q", q.Get("state"), state)
	}
	return q.Get("code")
}

// login runs the browser part of the code flow and returns the code.
func login(t *testing.T, browser *http.Client, r rp.RelyingParty, username, password, state, nonce string) string {
	t.Helper()
	f := openLogin(t, browser, authURL(r, state, nonce))
	return codeFrom(t, submit(t, browser, f, formValues(f, username, password)), state)
}

// tokens is a completed login at a relying party.
func loginAndExchange(t *testing.T, browser *http.Client, r rp.RelyingParty, username, password string) *oidc.Tokens[*oidc.IDTokenClaims] {
	t.Helper()
	nonce := "nonce-" + username
	code := login(t, browser, r, username, password, "state-"+username, nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), nonce), code, r, rp.WithCodeVerifier(testCodeVerifer))
	if err != nil {
		t.Fatalf("CodeExchange: %v", err)
	}
	return tokens
}

// keySet is the provider's JWKS as a relying party sees it.
func (e *env) keySet() oidc.KeySet {
	return rp.NewRemoteKeySet(http.DefaultClient, e.p.Issuer()+"/keys")
}

// verifyJWT checks the signature against /keys and returns the header and
// the claims.
func (e *env) verifyJWT(t *testing.T, token string) (jose.Header, map[string]any) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	payload, err := e.keySet().VerifySignature(t.Context(), jws)
	if err != nil {
		t.Fatalf("verify JWT against /keys: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Protected, claims
}

// getJSON fetches a JSON document.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// postToken calls the token endpoint directly with client_secret_basic.
func (e *env) postToken(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.p.Issuer()+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token response: %v", err)
	}
	return resp.StatusCode, body
}
