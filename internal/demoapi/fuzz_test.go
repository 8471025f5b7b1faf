package demoapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzServeHTTP feeds arbitrary Authorization headers to the handler: it
// must never panic, answer only 200 or 401, and never echo the header.
func FuzzServeHTTP(f *testing.F) {
	ti := newTestIssuer(f)
	ti.addKey("rsa", jose.RS256, true)
	valid := ti.sign("rsa", validClaims(ti))
	for _, seed := range []string{
		"Bearer " + valid,
		"Bearer " + tamper(f, valid),
		"Bearer " + unsignedJWT(f, validClaims(ti)),
		"Bearer a.b.c",
		"Bearer ....",
		"Basic dXNlcjpwYXNz",
		"",
	} {
		f.Add(seed)
	}
	h, _ := newTestHandler(f, ti, testAudience)
	f.Fuzz(func(t *testing.T, authorization string) {
		req, err := http.NewRequest(http.MethodGet, "/api/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header["Authorization"] = []string{authorization}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: status %d, want 200 or 401; body %s", authorization, rec.Code, rec.Body.String())
		}
		// A JWT-like value (no fixed response text has a '.') must not come back.
		token := strings.TrimSpace(strings.TrimPrefix(authorization, "Bearer "))
		if len(token) > 16 && strings.Contains(token, ".") && strings.Contains(rec.Body.String(), token) {
			t.Fatalf("response echoes the token: %s", rec.Body.String())
		}
	})
}
