package devidp

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

func TestCodeFlowIDToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")

	if got := e.p.Stats().CodeExchanges; got != 1 {
		t.Errorf("Stats().CodeExchanges = %d, want 1", got)
	}
	if tokens.RefreshToken == "" {
		t.Error("no refresh token although offline_access was requested")
	}
	_, claims := e.verifyJWT(t, tokens.IDToken)
	want := map[string]any{
		"iss":                e.p.Issuer(),
		"sub":                aliceID,
		"azp":                testClientID,
		"nonce":              "nonce-alice",
		"name":               "Alice Admin",
		"given_name":         "Alice",
		"family_name":        "Admin",
		"preferred_username": "alice",
		"email":              "alice@example.com",
		"email_verified":     true,
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("ID token claim %s = %#v, want %#v", k, claims[k], v)
		}
	}
	aud := audience(claims)
	if !slices.Contains(aud, testClientID) || !slices.Contains(aud, DefaultProjectID) {
		t.Errorf("ID token aud = %v, want client %q and project %q", aud, testClientID, DefaultProjectID)
	}
	if sid, _ := claims["sid"].(string); !strings.HasPrefix(sid, "V2_") {
		t.Errorf("ID token sid = %#v, want V2_<random>", claims["sid"])
	}
	wantRoles := map[string]any{
		"admin": map[string]any{DemoOrgID: DemoOrgDomain},
		"user":  map[string]any{DemoOrgID: DemoOrgDomain},
	}
	for _, name := range []string{RolesClaim, "urn:zitadel:iam:org:project:" + DefaultProjectID + ":roles"} {
		if got := jsonString(t, claims[name]); got != jsonString(t, wantRoles) {
			t.Errorf("ID token %s = %s, want %s", name, got, jsonString(t, wantRoles))
		}
	}
	if tokens.IDTokenClaims.Subject != aliceID {
		t.Errorf("verified claims sub = %q, want %q", tokens.IDTokenClaims.Subject, aliceID)
	}
}

func TestAccessTokenJWT(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "bob", "bob")

	header, claims := e.verifyJWT(t, tokens.AccessToken)
	if header.KeyID == "" {
		t.Error("access token has no kid")
	}
	aud := audience(claims)
	if !slices.Contains(aud, testClientID) || !slices.Contains(aud, DefaultProjectID) {
		t.Errorf("access token aud = %v, want client and project", aud)
	}
	if claims["sub"] != bobID || claims["client_id"] != testClientID || claims["iss"] != e.p.Issuer() {
		t.Errorf("access token sub/client_id/iss = %v/%v/%v", claims["sub"], claims["client_id"], claims["iss"])
	}
	if claims["sid"] != tokens.IDTokenClaims.Claims["sid"] {
		t.Errorf("access token sid = %v, ID token sid = %v", claims["sid"], tokens.IDTokenClaims.Claims["sid"])
	}
	want := `{"user":{"bff-demo-org":"demo.localhost"}}`
	if got := jsonString(t, claims[RolesClaim]); got != want {
		t.Errorf("access token roles = %s, want %s", got, want)
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Error("access token has no jti")
	}
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")

	info, err := rp.Userinfo[*oidc.UserInfo](t.Context(), tokens.AccessToken, oidc.BearerToken, aliceID, r)
	if err != nil {
		t.Fatalf("Userinfo: %v", err)
	}
	if info.Subject != aliceID || info.Name != "Alice Admin" || info.PreferredUsername != "alice" ||
		info.Email != "alice@example.com" || !bool(info.EmailVerified) {
		t.Errorf("userinfo = %+v", info)
	}
	if _, ok := info.Claims[RolesClaim]; !ok {
		t.Errorf("userinfo has no %s: %v", RolesClaim, info.Claims)
	}
}

func TestClientAuthMethods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"client_secret_basic", oauth2.AuthStyleInHeader},
		{"client_secret_post", oauth2.AuthStyleInParams},
	}
	e := newEnv(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.newRP(t, testClientID, testSecret, testScopes, rp.WithAuthStyle(tc.style))
			tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
			if _, err := rp.RefreshTokens[*oidc.IDTokenClaims](withNonce(t.Context(), "nonce-alice"), r, tokens.RefreshToken, "", ""); err != nil {
				t.Errorf("refresh: %v", err)
			}
			if err := rp.RevokeToken(t.Context(), r, tokens.AccessToken, "access_token"); err != nil {
				t.Errorf("revoke: %v", err)
			}
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		good := e.newRP(t, testClientID, testSecret, testScopes)
		bad := e.newRP(t, testClientID, "wrong", testScopes)
		code := login(t, newBrowser(t), good, "alice", "alice", "s", "n")
		_, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "n"), code, bad, rp.WithCodeVerifier(testCodeVerifer))
		if err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("exchange with wrong secret: err = %v, want invalid_client", err)
		}
	})
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		verifier string
		wantErr  string
	}{
		{"wrong verifier", "another-verifier-that-is-long-enough-0123456789-abcdefghijklmn", "invalid_grant"},
		{"missing verifier", "", "invalid_request"},
	}
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code := login(t, newBrowser(t), r, "alice", "alice", "s", "n")
			var opts []rp.CodeExchangeOpt
			if tc.verifier != "" {
				opts = append(opts, rp.WithCodeVerifier(tc.verifier))
			}
			_, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "n"), code, r, opts...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("exchange: err = %v, want %s", err, tc.wantErr)
			}
			// The right verifier still works: a failed attempt does not
			// burn the code, the redemption does.
			if _, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "n"), code, r, rp.WithCodeVerifier(testCodeVerifer)); err != nil {
				t.Fatalf("exchange with the right verifier: %v", err)
			}
			if _, err := rp.CodeExchange[*oidc.IDTokenClaims](withNonce(t.Context(), "n"), code, r, rp.WithCodeVerifier(testCodeVerifer)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("second exchange of one code: err = %v, want invalid_grant", err)
			}
		})
	}
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	first := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
	ctx := withNonce(t.Context(), "nonce-alice")

	second, err := rp.RefreshTokens[*oidc.IDTokenClaims](ctx, r, first.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh token not rotated: old %q, new %q", first.RefreshToken, second.RefreshToken)
	}
	if second.IDTokenClaims == nil {
		t.Fatal("refresh returned no ID token")
	}
	if got, want := second.IDTokenClaims.Subject, first.IDTokenClaims.Subject; got != want {
		t.Errorf("refreshed sub = %q, want %q", got, want)
	}
	if got, want := second.IDTokenClaims.Claims["sid"], first.IDTokenClaims.Claims["sid"]; got != want || got == nil {
		t.Errorf("refreshed sid = %v, want %v", got, want)
	}
	if _, ok := second.IDTokenClaims.Claims[RolesClaim]; !ok {
		t.Errorf("refreshed ID token has no roles claim")
	}

	// Reuse of the rotated-out token fails at once.
	status, body := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("reuse of old refresh token: status %d, body %v; want 400 invalid_grant", status, body)
	}

	// A refresh without scope keeps the original scopes.
	status, body = e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}})
	if status != http.StatusOK {
		t.Fatalf("refresh without scope: status %d, body %v", status, body)
	}
	if got := body["scope"]; got != strings.Join(testScopes, " ") {
		t.Errorf("scope after refresh without scope = %v, want %q", got, strings.Join(testScopes, " "))
	}
	if got := e.p.Stats().Refreshes; got != 2 {
		t.Errorf("Stats().Refreshes = %d, want 2", got)
	}
}

func TestRefreshNonce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		omit      bool
		wantNonce string
	}{
		{"repeated like ZITADEL", false, "nonce-alice"},
		{"omitted", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.OmitNonceOnRefresh = tc.omit })
			r := e.newRP(t, testClientID, testSecret, testScopes)
			first := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
			refreshed, err := rp.RefreshTokens[*oidc.IDTokenClaims](withNonce(t.Context(), tc.wantNonce), r, first.RefreshToken, "", "")
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if got := refreshed.IDTokenClaims.Nonce; got != tc.wantNonce {
				t.Errorf("refreshed nonce = %q, want %q", got, tc.wantNonce)
			}
		})
	}
}

func TestNoRefreshTokenWithoutOfflineAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, []string{oidc.ScopeOpenID, oidc.ScopeProfile})
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
	if tokens.RefreshToken != "" {
		t.Errorf("got a refresh token without offline_access")
	}
	if tokens.IDTokenClaims.Email != "" {
		t.Errorf("email claim without email scope: %q", tokens.IDTokenClaims.Email)
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")

	if err := rp.RevokeToken(t.Context(), r, tokens.RefreshToken, "refresh_token"); err != nil {
		t.Fatalf("revoke refresh token: %v", err)
	}
	if got := e.p.Stats().Revocations; got != 1 {
		t.Errorf("Stats().Revocations = %d, want 1", got)
	}
	status, body := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}})
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh with revoked token: status %d, body %v; want invalid_grant", status, body)
	}
	// The access token issued with it is gone from /userinfo too.
	if _, err := rp.Userinfo[*oidc.UserInfo](t.Context(), tokens.AccessToken, oidc.BearerToken, aliceID, r); err == nil {
		t.Error("userinfo accepted the access token of a revoked refresh token")
	}
	// Revoking an unknown or already revoked token is not an error (RFC 7009, 2.2).
	if err := rp.RevokeToken(t.Context(), r, tokens.RefreshToken, "refresh_token"); err != nil {
		t.Errorf("revoke again: %v", err)
	}

	t.Run("access token", func(t *testing.T) {
		tokens := loginAndExchange(t, newBrowser(t), r, "bob", "bob")
		if err := rp.RevokeToken(t.Context(), r, tokens.AccessToken, "access_token"); err != nil {
			t.Fatalf("revoke access token: %v", err)
		}
		if _, err := rp.Userinfo[*oidc.UserInfo](t.Context(), tokens.AccessToken, oidc.BearerToken, bobID, r); err == nil {
			t.Error("userinfo accepted a revoked access token")
		}
	})
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")

	// Another client of the project (e.g. an API) may introspect.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.p.Issuer()+"/oauth/introspect",
		strings.NewReader(url.Values{"token": {tokens.AccessToken}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(otherClientID, otherSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body["active"] != true || body["sub"] != aliceID || body["client_id"] != testClientID || body[RolesClaim] == nil {
		t.Errorf("introspection = %v, want active token of alice issued to %s with roles", body, testClientID)
	}
}

func audience(claims map[string]any) []string {
	switch v := claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, a := range v {
			s, _ := a.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
