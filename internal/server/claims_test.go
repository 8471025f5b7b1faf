package server

import (
	"slices"
	"testing"
)

func TestPickClaimsRoles(t *testing.T) {
	t.Parallel()
	a := newTestServer(t, testConfig(t, "")).apps[0]
	login := a.pickClaims(map[string]any{"sub": "u", "name": "U",
		"urn:zitadel:iam:org:project:roles":       map[string]any{"admin": map[string]any{"o": "d"}},
		"urn:zitadel:iam:org:project:123:roles":   map[string]any{"auditor": map[string]any{"o": "d"}},
		"urn:zitadel:iam:org:project:123:unknown": "x",
	}, nil)
	if got := login["roles"].([]string); !slices.Equal(got, []string{"admin", "auditor"}) {
		t.Fatalf("login roles %v", got)
	}
	if _, ok := login["urn:zitadel:iam:org:project:roles"]; ok {
		t.Fatal("raw role claim copied into /auth/me")
	}
	for _, tc := range []struct {
		name    string
		refresh map[string]any
		want    []string
	}{
		{"roles revoked (empty claim)", map[string]any{"sub": "u", "urn:zitadel:iam:org:project:roles": map[string]any{}}, []string{}},
		{"plain empty roles", map[string]any{"sub": "u", "roles": []any{}}, []string{}},
		{"no role claim in the refreshed token", map[string]any{"sub": "u"}, []string{"admin", "auditor"}},
		{"role changed", map[string]any{"sub": "u", "urn:zitadel:iam:org:project:roles": map[string]any{"user": map[string]any{}}}, []string{"user"}},
	} {
		got := a.pickClaims(tc.refresh, login)
		if !slices.Equal(got["roles"].([]string), tc.want) || got["name"] != "U" {
			t.Errorf("%s: %v, want roles %v and the name kept", tc.name, got, tc.want)
		}
	}
}
