package oidc

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// fakeOP is a scriptable OpenID Provider: discovery, a rotatable JWKS and a
// token endpoint whose answer each test decides, so every ID-token attack
// can be tried against the real verification path over HTTP.
type fakeOP struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	key       *rsa.PrivateKey
	kid       string
	jwksHits  int
	token     func(form map[string][]string) (int, map[string]any)
	revoked   []string
	tokenHits int
}

func newFakeOP(t testing.TB) *fakeOP {
	t.Helper()
	op := &fakeOP{t: t}
	op.rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, 200, map[string]any{
			"issuer":                                op.srv.URL,
			"authorization_endpoint":                op.srv.URL + "/authorize",
			"token_endpoint":                        op.srv.URL + "/token",
			"jwks_uri":                              op.srv.URL + "/keys",
			"end_session_endpoint":                  op.srv.URL + "/end_session",
			"revocation_endpoint":                   op.srv.URL + "/revoke",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported":      []string{"S256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		op.jwksHits++
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: op.kid, Algorithm: "RS256", Use: "sig"}}}
		op.mu.Unlock()
		writeJSONTest(w, 200, set)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		op.tokenHits++
		fn := op.token
		op.mu.Unlock()
		status, body := fn(r.PostForm)
		writeJSONTest(w, status, body)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		op.revoked = append(op.revoked, r.PostForm.Get("token"))
		op.mu.Unlock()
		w.WriteHeader(200)
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func writeJSONTest(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// rotate replaces the signing key; the old one disappears from the JWKS.
func (op *fakeOP) rotate() {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		op.t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	op.mu.Lock()
	op.key, op.kid = k, "k"+string(rune('a'+b[0]%26))+time.Now().Format("150405.000000")
	op.mu.Unlock()
}

func (op *fakeOP) setToken(fn func(form map[string][]string) (int, map[string]any)) {
	op.mu.Lock()
	op.token = fn
	op.mu.Unlock()
}

// sign signs claims with the current key (or with key/kid when given).
func (op *fakeOP) sign(claims map[string]any, typ string) string {
	op.mu.Lock()
	key, kid := op.key, op.kid
	op.mu.Unlock()
	return signWith(op.t, key, kid, claims, typ)
}

func signWith(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any, typ string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// idClaims are valid ID-token claims for client "web" and nonce.
func (op *fakeOP) idClaims(nonce string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": op.srv.URL, "sub": "user-1", "aud": []string{"web"}, "azp": "web",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": nonce, "sid": "sid-1",
		"name": "Test User",
	}
}

func (op *fakeOP) client(t testing.TB) *Client {
	t.Helper()
	return New(Config{
		Issuer: op.srv.URL, ClientID: "web", ClientSecret: "secret",
		Scopes: []string{"openid", "offline_access"}, RedirectURL: "https://app.example.com/auth/callback",
		PostLogoutRedirectURL: "https://app.example.com/",
		HTTPClient:            &http.Client{Timeout: 5 * time.Second},
	})
}
