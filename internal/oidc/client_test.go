package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func tokenResponse(idToken string, extra map[string]any) map[string]any {
	m := map[string]any{"access_token": "at-1", "token_type": "Bearer", "refresh_token": "rt-1", "expires_in": 300}
	if idToken != "" {
		m["id_token"] = idToken
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func noneToken(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	p, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// TestExchangeVerifiesIDToken tries each way an ID token can be wrong.
func TestExchangeVerifiesIDToken(t *testing.T) {
	op := newFakeOP(t)
	const nonce = "n-123"
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name    string
		idToken func() string
		wantErr error
	}{
		{"valid", func() string { return op.sign(op.idClaims(nonce), "") }, nil},
		{"wrong iss", func() string { c := op.idClaims(nonce); c["iss"] = "https://evil.example"; return op.sign(c, "") }, ErrInvalidToken},
		{"aud without client", func() string { c := op.idClaims(nonce); c["aud"] = []string{"other"}; return op.sign(c, "") }, ErrInvalidToken},
		{"azp of another client", func() string {
			c := op.idClaims(nonce)
			c["aud"], c["azp"] = []string{"web", "other"}, "other"
			return op.sign(c, "")
		}, ErrInvalidToken},
		{"wrong nonce", func() string { return op.sign(op.idClaims("other"), "") }, ErrInvalidToken},
		{"missing nonce", func() string { c := op.idClaims(nonce); delete(c, "nonce"); return op.sign(c, "") }, ErrInvalidToken},
		{"expired", func() string {
			c := op.idClaims(nonce)
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			return op.sign(c, "")
		}, ErrInvalidToken},
		{"issued in the future beyond leeway", func() string {
			c := op.idClaims(nonce)
			c["iat"] = time.Now().Add(5 * time.Minute).Unix()
			return op.sign(c, "")
		}, ErrInvalidToken},
		{"alg none", func() string { return noneToken(op.idClaims(nonce)) }, ErrInvalidToken},
		{"unknown key, known kid", func() string { return signWith(t, otherKey, op.kid, op.idClaims(nonce), "") }, ErrInvalidToken},
		{"unknown key and kid", func() string { return signWith(t, otherKey, "nope", op.idClaims(nonce), "") }, ErrInvalidToken},
		{"no subject", func() string { c := op.idClaims(nonce); delete(c, "sub"); return op.sign(c, "") }, ErrInvalidToken},
		{"no id_token", func() string { return "" }, ErrInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.idToken()
			op.setToken(func(map[string][]string) (int, map[string]any) { return 200, tokenResponse(raw, nil) })
			c := op.client(t)
			toks, err := c.Exchange(context.Background(), "code", "verifier", nonce, "")
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if toks.Subject != "user-1" || toks.SID != "sid-1" || toks.RefreshToken != "rt-1" || toks.Claims["name"] != "Test User" {
					t.Fatalf("tokens = %+v", toks)
				}
				if d := time.Until(toks.Expiry); d < 290*time.Second || d > 301*time.Second {
					t.Fatalf("expiry in %v, want ~300s", d)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Exchange error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestExchangeProviderErrors(t *testing.T) {
	op := newFakeOP(t)
	for _, tc := range []struct {
		status int
		body   map[string]any
		want   error
	}{
		{400, map[string]any{"error": "invalid_grant", "error_description": "code used"}, ErrInvalidGrant},
		{500, map[string]any{"error": "server_error"}, ErrProvider},
		{503, map[string]any{}, ErrProvider},
	} {
		op.setToken(func(map[string][]string) (int, map[string]any) { return tc.status, tc.body })
		_, err := op.client(t).Exchange(context.Background(), "code", "v", "n", "")
		if !errors.Is(err, tc.want) {
			t.Errorf("status %d %v: error %v, want %v", tc.status, tc.body, err, tc.want)
		}
	}
	down := New(Config{Issuer: "http://127.0.0.1:1", ClientID: "web", HTTPClient: &http.Client{Timeout: time.Second}})
	if _, err := down.Exchange(context.Background(), "c", "v", "n", ""); !errors.Is(err, ErrProvider) {
		t.Errorf("unreachable provider: %v, want ErrProvider", err)
	}
}

// TestKeyRotationPickedUp: a token signed with a new key is accepted after
// one JWKS refetch, without a restart.
func TestKeyRotationPickedUp(t *testing.T) {
	op := newFakeOP(t)
	c := op.client(t)
	for i := range 2 {
		if i == 1 {
			op.rotate()
		}
		raw := op.sign(op.idClaims("n"), "")
		op.setToken(func(map[string][]string) (int, map[string]any) { return 200, tokenResponse(raw, nil) })
		if _, err := c.Exchange(context.Background(), "code", "v", "n", ""); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
	op.mu.Lock()
	hits := op.jwksHits
	op.mu.Unlock()
	if hits != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (once, then once after rotation)", hits)
	}
}

func TestRefresh(t *testing.T) {
	op := newFakeOP(t)
	c := op.client(t)
	ctx := context.Background()

	op.setToken(func(f map[string][]string) (int, map[string]any) {
		if f["grant_type"][0] != "refresh_token" || f["refresh_token"][0] != "rt-old" {
			return 400, map[string]any{"error": "invalid_request"}
		}
		if _, ok := f["scope"]; ok {
			return 400, map[string]any{"error": "invalid_scope", "error_description": "refresh must not send scope"}
		}
		return 200, tokenResponse("", map[string]any{"refresh_token": "rt-new"})
	})
	toks, err := c.Refresh(ctx, "rt-old")
	if err != nil || toks.RefreshToken != "rt-new" || toks.AccessToken != "at-1" {
		t.Fatalf("Refresh = %+v, %v", toks, err)
	}

	// No expires_in: expiry from the JWT access token's exp.
	exp := time.Now().Add(17 * time.Minute).Truncate(time.Second)
	jwtAT := op.sign(map[string]any{"exp": exp.Unix(), "sub": "user-1"}, "")
	op.setToken(func(map[string][]string) (int, map[string]any) {
		return 200, tokenResponse("", map[string]any{"expires_in": nil, "access_token": jwtAT})
	})
	toks, err = c.Refresh(ctx, "rt")
	if err != nil || !toks.Expiry.Equal(exp) {
		t.Fatalf("expiry without expires_in = %v (%v), want JWT exp %v", toks.Expiry, err, exp)
	}
	// Neither: the configured default lifetime (5m).
	op.setToken(func(map[string][]string) (int, map[string]any) {
		return 200, tokenResponse("", map[string]any{"expires_in": nil})
	})
	toks, err = c.Refresh(ctx, "rt")
	if d := time.Until(toks.Expiry); err != nil || d < 4*time.Minute || d > 5*time.Minute+time.Second {
		t.Fatalf("default expiry in %v (%v), want ~5m", d, err)
	}

	for _, tc := range []struct {
		status int
		body   map[string]any
		want   error
	}{
		{400, map[string]any{"error": "invalid_grant"}, ErrInvalidGrant},
		{503, map[string]any{"error": "temporarily_unavailable"}, ErrProvider},
		{502, map[string]any{}, ErrProvider},
	} {
		op.setToken(func(map[string][]string) (int, map[string]any) { return tc.status, tc.body })
		if _, err := c.Refresh(ctx, "rt"); !errors.Is(err, tc.want) {
			t.Errorf("refresh answered %d %v: %v, want %v", tc.status, tc.body, err, tc.want)
		}
	}
}

func TestVerifyRefreshedIDToken(t *testing.T) {
	op := newFakeOP(t)
	c := op.client(t)
	ctx := context.Background()
	noNonce := op.idClaims("")
	delete(noNonce, "nonce")
	other := op.idClaims("n")
	other["sub"] = "user-2"
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   error
	}{
		{"nonce repeated (ZITADEL)", op.idClaims("n"), nil},
		{"nonce omitted (most providers)", noNonce, nil},
		{"foreign nonce", op.idClaims("x"), ErrSubjectChanged},
		{"another subject", other, ErrSubjectChanged},
	} {
		_, err := c.VerifyRefreshedIDToken(ctx, op.sign(tc.claims, ""), "user-1", "n")
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestEndSessionURL(t *testing.T) {
	op := newFakeOP(t)
	c := op.client(t)
	ctx := context.Background()
	u, err := c.EndSessionURL(ctx, "id.token.x", "st", true)
	if err != nil {
		t.Fatal(err)
	}
	q := mustQuery(t, u)
	if q.Get("id_token_hint") != "id.token.x" || q.Get("client_id") != "web" || q.Get("post_logout_redirect_uri") != "https://app.example.com/" || q.Get("state") != "st" {
		t.Fatalf("end-session URL %s", u)
	}
	u, _ = c.EndSessionURL(ctx, "id.token.x", "st", false)
	if q := mustQuery(t, u); q.Get("id_token_hint") != "" || q.Get("client_id") != "web" {
		t.Fatalf("without hint: %s", u)
	}
	u, _ = c.EndSessionURL(ctx, strings.Repeat("x", 5000), "st", true)
	if q := mustQuery(t, u); q.Get("id_token_hint") != "" || q.Get("client_id") != "web" || len(u) > maxHintURL {
		t.Fatalf("overlong hint kept: %d bytes", len(u))
	}
}

func TestRevoke(t *testing.T) {
	op := newFakeOP(t)
	if err := op.client(t).Revoke(context.Background(), "rt-9"); err != nil {
		t.Fatal(err)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(op.revoked) != 1 || op.revoked[0] != "rt-9" {
		t.Fatalf("revoked %v", op.revoked)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestProviderTimeout: every call to the provider is bounded by the HTTP
// client's timeout and reported as a transient provider error.
func TestProviderTimeout(t *testing.T) {
	op := newFakeOP(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	op.setToken(func(map[string][]string) (int, map[string]any) {
		<-release
		return 200, map[string]any{}
	})
	c := New(Config{Issuer: op.srv.URL, ClientID: "web", ClientSecret: "s", HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
	start := time.Now()
	_, err := c.Refresh(context.Background(), "rt")
	if !errors.Is(err, ErrProvider) {
		t.Fatalf("hanging token endpoint: %v, want ErrProvider", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("refresh waited %v despite a 300ms timeout", took)
	}
}

// TestExchangeMaxAge: with max_age the ID token must prove a recent login.
func TestExchangeMaxAge(t *testing.T) {
	op := newFakeOP(t)
	c := op.client(t)
	for _, tc := range []struct {
		name     string
		authTime any
		maxAge   string
		ok       bool
	}{
		{"recent", time.Now().Add(-10 * time.Second).Unix(), "60", true},
		{"too old", time.Now().Add(-10 * time.Minute).Unix(), "60", false},
		{"missing auth_time", nil, "0", false},
		{"no max_age asked", nil, "", true},
	} {
		claims := op.idClaims("n")
		if tc.authTime != nil {
			claims["auth_time"] = tc.authTime
		}
		raw := op.sign(claims, "")
		op.setToken(func(map[string][]string) (int, map[string]any) { return 200, tokenResponse(raw, nil) })
		_, err := c.Exchange(context.Background(), "code", "v", "n", tc.maxAge)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidToken)) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
