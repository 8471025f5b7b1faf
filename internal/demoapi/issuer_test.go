package demoapi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// testIssuer is a tiny OpenID Provider on httptest: it serves a discovery
// document and a JWKS, and signs tokens with its keys.
type testIssuer struct {
	t   testing.TB
	srv *httptest.Server

	// discoveryIssuer, when set, is announced instead of the server URL.
	discoveryIssuer string

	down          atomic.Bool  // discovery answers 503 while true
	discoveryHits atomic.Int32 // discovery requests served
	jwksHits      atomic.Int32 // JWKS requests served

	mu        sync.Mutex
	published []jose.JSONWebKey
	keysByID  map[string]signingKey
}

type signingKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	ti := &testIssuer{t: t, keysByID: map[string]signingKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryHits.Add(1)
		if ti.down.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		iss := ti.srv.URL
		if ti.discoveryIssuer != "" {
			iss = ti.discoveryIssuer
		}
		doc := map[string]any{
			"issuer":                                iss,
			"jwks_uri":                              ti.srv.URL + "/keys",
			"authorization_endpoint":                ti.srv.URL + "/authorize",
			"token_endpoint":                        ti.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES384", "HS256", "none"},
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), ti.published...)}
		ti.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	ti.srv = httptest.NewServer(mux)
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) URL() string { return ti.srv.URL }

// addKey generates a key of the given algorithm; published puts its public
// half in the JWKS.
func (ti *testIssuer) addKey(kid string, alg jose.SignatureAlgorithm, published bool) {
	ti.t.Helper()
	var (
		key crypto.Signer
		err error
	)
	switch alg {
	case jose.RS256, jose.PS256:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		ti.t.Fatalf("addKey: unsupported alg %s", alg)
	}
	if err != nil {
		ti.t.Fatalf("generate %s key: %v", alg, err)
	}
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.keysByID[kid] = signingKey{alg: alg, key: key}
	if published {
		ti.published = append(ti.published, jose.JSONWebKey{
			Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig",
		})
	}
}

// publicKey returns the public half of a key, e.g. to forge HS256 tokens.
func (ti *testIssuer) publicKey(kid string) crypto.PublicKey {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.keysByID[kid].key.Public()
}

// sign returns a compact JWS of claims signed with the key kid.
func (ti *testIssuer) sign(kid string, claims map[string]any) string {
	ti.t.Helper()
	ti.mu.Lock()
	sk, ok := ti.keysByID[kid]
	ti.mu.Unlock()
	if !ok {
		ti.t.Fatalf("sign: no key %q", kid)
	}
	return signJWT(ti.t, jose.SigningKey{Algorithm: sk.alg, Key: jose.JSONWebKey{Key: sk.key, KeyID: kid}}, claims)
}

func signJWT(t testing.TB, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("new signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return s
}
