package demoapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"
)

// testNow is the fixed clock of every handler under test.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const testAudience = "bff-client"

// validClaims returns the claims of a token that verifies against ti.
func validClaims(ti *testIssuer) map[string]any {
	return map[string]any{
		"iss":       ti.URL(),
		"sub":       "user-123",
		"aud":       []string{"project-1", testAudience},
		"exp":       testNow.Add(5 * time.Minute).Unix(),
		"iat":       testNow.Add(-time.Minute).Unix(),
		"nbf":       testNow.Add(-time.Minute).Unix(),
		"client_id": testAudience,
		"scope":     "openid profile email",
		"urn:zitadel:iam:org:project:roles": map[string]any{
			"user":  map[string]any{"org-1": "example.com"},
			"admin": map[string]any{"org-1": "example.com"},
		},
	}
}

// with returns a copy of claims with the given changes; a nil value deletes.
func with(claims map[string]any, changes map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

func unsignedJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// syncBuffer is a log sink that is safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestHandler(t testing.TB, ti *testIssuer, audience string) (*Handler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	h, err := New(context.Background(), Config{
		Issuer:     ti.URL(),
		Audience:   audience,
		HTTPClient: ti.srv.Client(),
		Logger:     zerolog.New(logs).Level(zerolog.DebugLevel),
		Now:        func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, logs
}

func serve(h http.Handler, method, target, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode body %q: %v", rec.Body.String(), err)
	}
	return v
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey("rsa", jose.RS256, true)
	ti.addKey("ec", jose.ES384, true)           // ES384 is accepted because discovery lists it
	ti.addKey("stranger", jose.RS256, false)    // never published
	ti.addKey("rsa-twin", jose.RS256, false)    // signs with kid "rsa" below
	ti.addKey("es256-unpub", jose.ES256, false) // never published

	valid := validClaims(ti)
	rsaDER, err := x509.MarshalPKIXPublicKey(ti.publicKey("rsa"))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		authorization string
		audience      string
		wantStatus    int
		wantError     string
		wantMessage   string
	}{
		{name: "valid RS256", authorization: "Bearer " + ti.sign("rsa", valid), audience: testAudience, wantStatus: http.StatusOK},
		{name: "valid ES384 from discovery", authorization: "Bearer " + ti.sign("ec", valid), audience: testAudience, wantStatus: http.StatusOK},
		{name: "lower-case scheme", authorization: "bearer " + ti.sign("rsa", valid), audience: testAudience, wantStatus: http.StatusOK},
		{name: "expired within leeway", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"exp": testNow.Add(-20 * time.Second).Unix()})), audience: testAudience, wantStatus: http.StatusOK},
		{name: "no audience configured accepts any aud", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"aud": "someone-else"})), wantStatus: http.StatusOK},
		{name: "missing header", authorization: "", audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "missing_token"},
		{name: "wrong scheme", authorization: "Basic dXNlcjpwYXNz", audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "missing_token"},
		{name: "empty bearer", authorization: "Bearer ", audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "missing_token"},
		{name: "garbage", authorization: "Bearer not-a-jwt", audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "malformed token"},
		{name: "garbage three parts", authorization: "Bearer a.b!.c", audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "malformed token"},
		{name: "wrong issuer", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"iss": "https://evil.example"})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "issuer does not match"},
		{name: "issuer with trailing slash", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"iss": ti.URL() + "/"})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "issuer does not match"},
		{name: "expired", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"exp": testNow.Add(-time.Minute).Unix()})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "token has expired"},
		{name: "no exp", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"exp": nil})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "token has no exp"},
		{name: "not valid yet", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"nbf": testNow.Add(time.Minute).Unix()})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "token is not valid yet"},
		{name: "issued in the future", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"iat": testNow.Add(time.Minute).Unix()})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "token was issued in the future"},
		{name: "an ID token (nonce)", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"nonce": "n-1"})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "an ID token is not an access token"},
		{name: "an ID token (at_hash)", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"at_hash": "x"})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "an ID token is not an access token"},
		{name: "no sub", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"sub": nil})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "token has no sub"},
		{name: "wrong audience", authorization: "Bearer " + ti.sign("rsa", with(valid, map[string]any{"aud": []string{"project-1", "other-client"}})), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "audience does not match"},
		{name: "unknown key", authorization: "Bearer " + ti.sign("stranger", valid), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "signature is invalid"},
		{name: "unpublished ES256 key", authorization: "Bearer " + ti.sign("es256-unpub", valid), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "signature is invalid"},
		{name: "unknown key reusing a known kid", authorization: "Bearer " + signJWT(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: ti.keysByID["rsa-twin"].key, KeyID: "rsa"}}, valid), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "signature is invalid"},
		{name: "tampered payload", authorization: "Bearer " + tamper(t, ti.sign("rsa", valid)), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "signature is invalid"},
		{name: "alg none", authorization: "Bearer " + unsignedJWT(t, valid), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "signature algorithm not accepted"},
		{name: "HS256 with the public key as secret", authorization: "Bearer " + signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: rsaDER, KeyID: "rsa"}}, valid), audience: testAudience, wantStatus: http.StatusUnauthorized, wantError: "invalid_token", wantMessage: "signature algorithm not accepted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, logs := newTestHandler(t, ti, tc.audience)
			rec := serve(h, http.MethodGet, "/api/whoami", tc.authorization)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if token, ok := strings.CutPrefix(tc.authorization, "Bearer "); ok && len(token) > 10 {
				if strings.Contains(rec.Body.String(), token) || strings.Contains(rec.Header().Get("WWW-Authenticate"), token) {
					t.Errorf("response echoes the token: %s", rec.Body.String())
				}
				if strings.Contains(logs.String(), token) {
					t.Errorf("log contains the token: %s", logs.String())
				}
			}
			if tc.wantStatus == http.StatusOK {
				return
			}
			body := decode[errorBody](t, rec)
			if body.Error != tc.wantError || body.Message != tc.wantMessage && tc.wantMessage != "" {
				t.Errorf("error = %q, message %q; want %q, %q", body.Error, body.Message, tc.wantError, tc.wantMessage)
			}
			wantChallenge := "Bearer"
			if tc.wantError == "invalid_token" {
				wantChallenge = `Bearer error="invalid_token"`
				if body.Message == "" {
					t.Errorf("invalid_token without a message")
				}
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, wantChallenge) {
				t.Errorf("WWW-Authenticate = %q, want prefix %q", got, wantChallenge)
			}
		})
	}
}

// tamper changes the token's payload and keeps its signature.
func tamper(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	payload = bytes.Replace(payload, []byte(`"user-123"`), []byte(`"user-999"`), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestServeHTTPResponse(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey("rsa", jose.RS256, true)
	h, _ := newTestHandler(t, ti, testAudience)

	claims := with(validClaims(ti), map[string]any{
		"azp":                                  "spa-client",
		"urn:zitadel:iam:org:project:42:roles": map[string]any{"auditor": map[string]any{"org-1": "example.com"}},
	})
	req := httptest.NewRequest(http.MethodPost, "/api/things/7?x=1", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+ti.sign("rsa", claims))
	req.Header.Set("X-Request-Id", "req-1")
	req.AddCookie(&http.Cookie{Name: "theme", Value: "dark-secret-value"})
	req.AddCookie(&http.Cookie{Name: "lang", Value: "en"})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	if strings.Contains(rec.Body.String(), "dark-secret-value") {
		t.Errorf("body echoes a cookie value: %s", rec.Body.String())
	}
	got := decode[Response](t, rec)
	want := Response{
		Sub:             "user-123",
		Roles:           []string{"admin", "auditor", "user"},
		ExpiresAt:       testNow.Add(5 * time.Minute).Format(time.RFC3339),
		ExpiresIn:       300,
		ClientID:        "spa-client",
		Scopes:          []string{"openid", "profile", "email"},
		Method:          http.MethodPost,
		Path:            "/api/things/7",
		ReceivedCookies: []string{"lang", "theme"},
		ReceivedHeaders: []string{"Authorization", "Cookie", "X-Request-Id"},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("response\n got  %s\n want %s", gotJSON, wantJSON)
	}
}

func TestServeHTTPEmptyLists(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey("rsa", jose.RS256, true)
	h, _ := newTestHandler(t, ti, "")

	claims := with(validClaims(ti), map[string]any{"scope": nil, "urn:zitadel:iam:org:project:roles": nil, "client_id": nil})
	rec := serve(h, http.MethodGet, "/", "Bearer "+ti.sign("rsa", claims))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	// Lists are [] rather than null so that clients can iterate them.
	for _, field := range []string{`"roles":[]`, `"scopes":[]`, `"receivedCookies":[]`, `"clientId":""`} {
		if !strings.Contains(rec.Body.String(), field) {
			t.Errorf("body %s lacks %s", rec.Body.String(), field)
		}
	}
}

func TestLazyDiscovery(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey("rsa", jose.RS256, true)
	ti.down.Store(true)
	h, _ := newTestHandler(t, ti, testAudience)
	token := "Bearer " + ti.sign("rsa", validClaims(ti))

	if hits := ti.discoveryHits.Load(); hits != 0 {
		t.Fatalf("New fetched discovery %d times, want 0 (lazy)", hits)
	}
	// The provider is not up yet: 503, retried on every request.
	for i := range 2 {
		rec := serve(h, http.MethodGet, "/api/whoami", token)
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("request %d while provider down: status = %d, want 503; body %s", i, rec.Code, rec.Body.String())
		}
		if body := decode[errorBody](t, rec); body.Error != "provider_unavailable" {
			t.Errorf("error = %q, want provider_unavailable", body.Error)
		}
	}
	if err := h.Discover(context.Background()); err == nil {
		t.Errorf("Discover while provider down: got nil error")
	}
	if hits := ti.discoveryHits.Load(); hits != 3 {
		t.Errorf("discovery hits = %d, want 3 (one per attempt)", hits)
	}

	ti.down.Store(false)
	if rec := serve(h, http.MethodGet, "/api/whoami", token); rec.Code != http.StatusOK {
		t.Fatalf("after provider came up: status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	// Loaded once, kept.
	ti.down.Store(true)
	if rec := serve(h, http.MethodGet, "/api/whoami", token); rec.Code != http.StatusOK {
		t.Fatalf("after discovery was loaded: status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	if hits := ti.discoveryHits.Load(); hits != 4 {
		t.Errorf("discovery hits = %d, want 4", hits)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.discoveryIssuer = "https://other.example" // before any request reaches the server
	ti.addKey("rsa", jose.RS256, true)
	h, _ := newTestHandler(t, ti, testAudience)

	rec := serve(h, http.MethodGet, "/", "Bearer "+ti.sign("rsa", validClaims(ti)))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", rec.Code, rec.Body.String())
	}
}

func TestConcurrentFirstRequests(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey("rsa", jose.RS256, true)
	h, _ := newTestHandler(t, ti, testAudience)
	token := "Bearer " + ti.sign("rsa", validClaims(ti))

	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			codes[i] = serve(h, http.MethodGet, "/api/whoami", token).Code
		})
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("request %d: status = %d, want 200", i, code)
		}
	}
	if hits := ti.discoveryHits.Load(); hits != 1 {
		t.Errorf("discovery hits = %d, want 1", hits)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ti := newTestIssuer(t)
	ti.addKey("old", jose.RS256, true)
	h, _ := newTestHandler(t, ti, testAudience)

	if rec := serve(h, http.MethodGet, "/", "Bearer "+ti.sign("old", validClaims(ti))); rec.Code != http.StatusOK {
		t.Fatalf("old key: status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	ti.addKey("new", jose.RS256, true)
	before := ti.jwksHits.Load()
	if rec := serve(h, http.MethodGet, "/", "Bearer "+ti.sign("new", validClaims(ti))); rec.Code != http.StatusOK {
		t.Fatalf("rotated key: status = %d, want 200; body %s", rec.Code, rec.Body.String())
	}
	if got := ti.jwksHits.Load() - before; got != 1 {
		t.Errorf("JWKS fetches for the unknown kid = %d, want 1", got)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		issuer  string
		wantErr bool
	}{
		{name: "https", issuer: "https://id.example.com", wantErr: false},
		{name: "http with path", issuer: "http://localhost:9000/oidc", wantErr: false},
		{name: "empty", issuer: "", wantErr: true},
		{name: "relative", issuer: "/oidc", wantErr: true},
		{name: "other scheme", issuer: "ftp://id.example.com", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := New(context.Background(), Config{Issuer: tc.issuer})
			if (err != nil) != tc.wantErr {
				t.Fatalf("New(%q) error = %v, wantErr %v", tc.issuer, err, tc.wantErr)
			}
			if err == nil && h == nil {
				t.Fatalf("New(%q) returned nil handler", tc.issuer)
			}
		})
	}
}

func TestAcceptedAlg(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"none", "HS256", "HS384", "HS512", "", "rs256"} {
		if acceptedAlg(alg) {
			t.Errorf("acceptedAlg(%q) = true, want false", alg)
		}
	}
	for _, alg := range []string{"RS256", "PS512", "ES384", "EdDSA"} {
		if !acceptedAlg(alg) {
			t.Errorf("acceptedAlg(%q) = false, want true", alg)
		}
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims map[string]any
		want   []string
	}{
		{name: "none", claims: map[string]any{}, want: []string{}},
		{name: "project roles", claims: map[string]any{rolesClaim: map[string]any{"b": nil, "a": nil}}, want: []string{"a", "b"}},
		{name: "per-project claim merged", claims: map[string]any{rolesClaim: map[string]any{"a": nil}, "urn:zitadel:iam:org:project:99:roles": map[string]any{"a": nil, "c": nil}}, want: []string{"a", "c"}},
		{name: "wrong shape ignored", claims: map[string]any{rolesClaim: []any{"admin"}}, want: []string{}},
		{name: "unrelated claims ignored", claims: map[string]any{"urn:zitadel:iam:org:projects:roles": map[string]any{"x": nil}, "roles": map[string]any{"y": nil}}, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := roles(tc.claims); !slices.Equal(got, tc.want) {
				t.Errorf("roles(%v) = %v, want %v", tc.claims, got, tc.want)
			}
		})
	}
}
