package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"
)

func (op *fakeOP) logoutClaims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": op.srv.URL, "aud": []string{"web"}, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "jti-1", "sid": "sid-1", "sub": "user-1",
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
	}
}

func TestVerifyLogoutToken(t *testing.T) {
	op := newFakeOP(t)
	c := op.client(t)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	with := func(mod func(m map[string]any)) func() string {
		return func() string { m := op.logoutClaims(); mod(m); return op.sign(m, "logout+jwt") }
	}
	cases := []struct {
		name  string
		token func() string
		ok    bool
	}{
		{"valid", with(func(map[string]any) {}), true},
		{"valid with typ JWT (ZITADEL)", func() string { return op.sign(op.logoutClaims(), "JWT") }, true},
		{"sid only", with(func(m map[string]any) { delete(m, "sub") }), true},
		{"sub only", with(func(m map[string]any) { delete(m, "sid") }), true},
		{"neither sid nor sub", with(func(m map[string]any) { delete(m, "sid"); delete(m, "sub") }), false},
		{"wrong issuer", with(func(m map[string]any) { m["iss"] = "https://evil.example" }), false},
		{"wrong audience", with(func(m map[string]any) { m["aud"] = []string{"other"} }), false},
		{"expired", with(func(m map[string]any) { m["exp"] = time.Now().Add(-5 * time.Minute).Unix() }), false},
		{"no exp", with(func(m map[string]any) { delete(m, "exp") }), false},
		{"issued in the future", with(func(m map[string]any) { m["iat"] = time.Now().Add(10 * time.Minute).Unix() }), false},
		{"no iat", with(func(m map[string]any) { delete(m, "iat") }), false},
		{"no events", with(func(m map[string]any) { delete(m, "events") }), false},
		{"other event", with(func(m map[string]any) { m["events"] = map[string]any{"http://example.com/other": map[string]any{}} }), false},
		{"nonce present", with(func(m map[string]any) { m["nonce"] = "n" }), false},
		{"no jti", with(func(m map[string]any) { delete(m, "jti") }), false},
		{"signed with an unknown key", func() string { return signWith(t, otherKey, op.kid, op.logoutClaims(), "") }, false},
		{"alg none", func() string { return noneToken(op.logoutClaims()) }, false},
		{"garbage", func() string { return "not-a-jwt" }, false},
		{"empty", func() string { return "" }, false},
		{"too large", func() string { return strings.Repeat("a", 20000) }, false},
		{"an ID token instead", func() string { return op.sign(op.idClaims("n"), "") }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lt, err := c.VerifyLogoutToken(context.Background(), tc.token())
			if tc.ok {
				if err != nil {
					t.Fatalf("rejected a valid logout token: %v", err)
				}
				if lt.JTI != "jti-1" || (lt.SID == "" && lt.Subject == "") {
					t.Fatalf("logout token = %+v", lt)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("accepted or misclassified: %+v, %v", lt, err)
			}
		})
	}
}

// FuzzVerifyLogoutToken: arbitrary input never panics and is never
// accepted (the fuzzer cannot forge the provider's signature).
func FuzzVerifyLogoutToken(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", strings.Repeat(".", 100)} {
		f.Add(s)
	}
	op := newFakeOP(f)
	c := op.client(f)
	f.Add(op.sign(op.logoutClaims(), "")[:40])
	f.Fuzz(func(t *testing.T, raw string) {
		if lt, err := c.VerifyLogoutToken(context.Background(), raw); err == nil {
			t.Fatalf("accepted forged logout token %q: %+v", raw, lt)
		}
	})
}
