package devidp

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// endSession sends the browser to /end_session and returns the response
// (redirects to the relying party are not followed).
func endSession(t *testing.T, browser *http.Client, issuer string, params url.Values) *http.Response {
	t.Helper()
	resp, err := browser.Get(issuer + "/end_session?" + params.Encode())
	if err != nil {
		t.Fatalf("end_session: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestEndSessionRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		postLogout   string
		state        string
		wantStatus   int
		wantLocation string // prefix
		wantBody     string
	}{
		{"registered post_logout_redirect_uri", testPostLogout, "st", http.StatusFound, testPostLogout + "?state=st", ""},
		{"unregistered post_logout_redirect_uri", "http://" + rpHost + "/elsewhere", "", http.StatusBadRequest, "", ""},
		{"no post_logout_redirect_uri", "", "", http.StatusOK, "", "You are logged out"},
	}
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			browser := newBrowser(t)
			tokens := loginAndExchange(t, browser, r, "alice", "alice")
			params := url.Values{"id_token_hint": {tokens.IDToken}}
			if tc.postLogout != "" {
				params.Set("post_logout_redirect_uri", tc.postLogout)
			}
			if tc.state != "" {
				params.Set("state", tc.state)
			}
			resp := endSession(t, browser, e.p.Issuer(), params)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, tc.wantLocation) || (tc.wantLocation == "") != (loc == "") {
				t.Errorf("Location = %q, want %q", loc, tc.wantLocation)
			}
			body, _ := io.ReadAll(resp.Body)
			if tc.wantBody != "" && !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("body lacks %q:\n%s", tc.wantBody, body)
			}

			status, _ := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}})
			loggedOut := tc.wantStatus != http.StatusBadRequest
			if loggedOut != (status == http.StatusBadRequest) {
				t.Errorf("refresh after end_session: status %d (logged out: %v)", status, loggedOut)
			}
			if loggedOut {
				// The OP session cookie is gone: the next login shows the form.
				openLogin(t, browser, authURL(r, "s", "n"))
			}
		})
	}
	if got := e.p.Stats().EndSessions; got != 2 {
		t.Errorf("Stats().EndSessions = %d, want 2", got)
	}
}

// checkLogoutToken verifies a logout token against /keys and its claims.
func checkLogoutToken(t *testing.T, e *env, token, clientID, sub, sid string) {
	t.Helper()
	header, claims := e.verifyJWT(t, token)
	if typ, _ := header.ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		t.Errorf("logout token typ = %q, want logout+jwt", typ)
	}
	if claims["iss"] != e.p.Issuer() || claims["sub"] != sub || claims["sid"] != sid {
		t.Errorf("logout token iss/sub/sid = %v/%v/%v, want %v/%v/%v", claims["iss"], claims["sub"], claims["sid"], e.p.Issuer(), sub, sid)
	}
	if aud := audience(claims); !slices.Equal(aud, []string{clientID}) {
		t.Errorf("logout token aud = %v, want [%s]", aud, clientID)
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if iat == 0 || exp-iat != 120 {
		t.Errorf("logout token iat %v, exp %v; want exp = iat + 120", iat, exp)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("logout token has no jti")
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("logout token has a nonce")
	}
	events, _ := claims["events"].(map[string]any)
	if ev, ok := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any); !ok || len(ev) != 0 {
		t.Errorf("logout token events = %v", claims["events"])
	}
}

func TestBackChannelLogoutOnEndSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	other := e.newRP(t, otherClientID, otherSecret, testScopes)
	browser := newBrowser(t)
	tokens := loginAndExchange(t, browser, r, "alice", "alice")
	sid, _ := tokens.IDTokenClaims.Claims["sid"].(string)
	// The second client joins the same OP session by single sign-on.
	code := codeFrom(t, mustGet(t, browser, authURL(other, "s", "n")), "s")
	otherTokens, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "n"), code, other, rp.WithCodeVerifier(testCodeVerifer))
	if err != nil {
		t.Fatal(err)
	}
	// A login of bob in another browser must not be affected.
	bobTokens := loginAndExchange(t, newBrowser(t), r, "bob", "bob")

	resp := endSession(t, browser, e.p.Issuer(), url.Values{
		"id_token_hint":            {tokens.IDToken},
		"post_logout_redirect_uri": {testPostLogout},
	})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("end_session: status %d", resp.StatusCode)
	}

	// Delivery is synchronous: the tokens are there when the redirect is.
	got := e.recv.received()
	if len(got) != 1 {
		t.Fatalf("client %s received %d logout tokens, want 1", testClientID, len(got))
	}
	checkLogoutToken(t, e, got[0], testClientID, aliceID, sid)
	gotOther := e.otherRcv.received()
	if len(gotOther) != 1 {
		t.Fatalf("client %s received %d logout tokens, want 1", otherClientID, len(gotOther))
	}
	checkLogoutToken(t, e, gotOther[0], otherClientID, aliceID, sid)
	if s := e.p.Stats(); s.BackChannelSent != 2 || s.BackChannelFailed != 0 {
		t.Errorf("Stats() = %+v, want 2 sent, 0 failed", s)
	}

	for name, rt := range map[string]string{"first client": tokens.RefreshToken, "second client": otherTokens.RefreshToken} {
		if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), r, rt, "", ""); err == nil {
			t.Errorf("%s: refresh token still works after logout", name)
		}
	}
	if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](withNonce(t.Context(), "nonce-bob"), r, bobTokens.RefreshToken, "", ""); err != nil {
		t.Errorf("bob's session was ended too: %v", err)
	}
}

func TestBackChannelLogoutFailure(t *testing.T) {
	t.Parallel()
	rc := (*receiver)(nil)
	e := newEnv(t, func(c *Config) {
		rc = newReceiver(t, http.StatusInternalServerError)
		c.Clients[0].BackChannelLogoutURI = rc.srv.URL
	})
	r := e.newRP(t, testClientID, testSecret, testScopes)
	browser := newBrowser(t)
	tokens := loginAndExchange(t, browser, r, "alice", "alice")

	resp := endSession(t, browser, e.p.Issuer(), url.Values{"id_token_hint": {tokens.IDToken}, "post_logout_redirect_uri": {testPostLogout}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("end_session with a failing receiver: status %d, want 302", resp.StatusCode)
	}
	if len(rc.received()) != 1 {
		t.Errorf("receiver got %d tokens, want 1", len(rc.received()))
	}
	if s := e.p.Stats(); s.BackChannelSent != 0 || s.BackChannelFailed != 1 {
		t.Errorf("Stats() = %+v, want 0 sent, 1 failed", s)
	}
}

func TestEndUserSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	// Alice in two browsers: two OP sessions.
	a1 := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
	a2 := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
	bob := loginAndExchange(t, newBrowser(t), r, "bob", "bob")
	sids := []string{a1.IDTokenClaims.Claims["sid"].(string), a2.IDTokenClaims.Claims["sid"].(string)}
	if sids[0] == sids[1] {
		t.Fatalf("two browsers share sid %s", sids[0])
	}

	if err := e.p.EndUserSessions(t.Context(), aliceID); err != nil {
		t.Fatalf("EndUserSessions: %v", err)
	}
	got := e.recv.received()
	if len(got) != 2 {
		t.Fatalf("received %d logout tokens, want 2", len(got))
	}
	var gotSIDs []string
	for _, tok := range got {
		_, claims := e.verifyJWT(t, tok)
		gotSIDs = append(gotSIDs, claims["sid"].(string))
		checkLogoutToken(t, e, tok, testClientID, aliceID, claims["sid"].(string))
	}
	slices.Sort(gotSIDs)
	slices.Sort(sids)
	if !slices.Equal(gotSIDs, sids) {
		t.Errorf("logout token sids = %v, want %v", gotSIDs, sids)
	}
	if len(e.otherRcv.received()) != 0 {
		t.Error("a client without tokens in the sessions was notified")
	}
	for _, tokens := range []string{a1.RefreshToken, a2.RefreshToken} {
		if status, _ := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens}}); status != http.StatusBadRequest {
			t.Errorf("alice's refresh token after EndUserSessions: status %d, want 400", status)
		}
	}
	if status, _ := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bob.RefreshToken}}); status != http.StatusOK {
		t.Errorf("bob's refresh token after ending alice's sessions: status %d, want 200", status)
	}
	if err := e.p.EndUserSessions(t.Context(), "no-such-user"); err == nil {
		t.Error("EndUserSessions of an unknown user: no error")
	}
}

func mustGet(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogsHaveNoSecrets(t *testing.T) {
	t.Parallel()
	const password = "pw-Zq8vX2"
	var logs lockedBuffer
	var rc *receiver
	e := newEnv(t, func(c *Config) {
		rc = newReceiver(t, http.StatusBadGateway)
		c.Clients[0].BackChannelLogoutURI = rc.srv.URL
		c.Users = []User{{ID: "42", Username: "carol", Password: password}}
		c.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel)
	})
	r := e.newRP(t, testClientID, testSecret, testScopes)
	browser := newBrowser(t)

	f := openLogin(t, browser, authURL(r, "s", "n"))
	submit(t, browser, f, formValues(f, "carol", password+"x")).Body.Close()
	nonce := "n"
	code := codeFrom(t, submit(t, browser, f, formValues(f, "carol", password)), "s")
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), nonce), code, r, rp.WithCodeVerifier(testCodeVerifer))
	if err != nil {
		t.Fatal(err)
	}
	endSession(t, browser, e.p.Issuer(), url.Values{"id_token_hint": {tokens.IDToken}})

	out := logs.String()
	if !strings.Contains(out, "back-channel logout") || !strings.Contains(out, "wrong username or password") {
		t.Errorf("expected log lines missing:\n%s", out)
	}
	secrets := map[string]string{
		"password":      password,
		"code":          code,
		"access token":  tokens.AccessToken,
		"refresh token": tokens.RefreshToken,
		"ID token":      tokens.IDToken,
		"client secret": testSecret,
	}
	for _, tok := range rc.received() {
		secrets["logout token"] = tok
	}
	for name, secret := range secrets {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("log contains the %s:\n%s", name, out)
		}
	}
}
