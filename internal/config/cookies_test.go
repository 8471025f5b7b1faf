package config

import (
	"strings"
	"testing"
)

func TestSharedCookieNamesRefused(t *testing.T) {
	t.Parallel()
	app := func(name, url, cookie string) string {
		return `
  - name: ` + name + `
    url: ` + url + `
    cookie: ` + cookie + `
    oidc: {issuer: https://idp.example.com, clientID: c, clientSecret: s}`
	}
	for _, tc := range []struct {
		name, yaml string
		wantErr    bool
	}{
		{"same host, same name", "apps:" + app("a", "https://example.com/a", "{name: __Host-s}") + app("b", "https://example.com/b", "{name: __Host-s}"), true},
		{"same host, default names", "apps:" + app("a", "https://example.com/a", "{}") + app("b", "https://example.com/b", "{}"), false},
		{"other hosts, same name", "apps:" + app("a", "https://a.example.com", "{name: __Host-s}") + app("b", "https://b.example.com", "{name: __Host-s}"), false},
		{"derived name of the other app", "apps:" + app("shop", "https://example.com/shop", "{}") + app("shop-logout", "https://example.com/other", "{}"), true},
		{"same base name, other prefix", "apps:" + app("a", "https://example.com/a", "{name: __Host-s}") + app("b", "https://example.com/b", "{name: __Secure-s}"), true},
		{"domain cookie covering the other host", "apps:" + app("a", "https://a.example.com", "{name: __Secure-s, domain: example.com}") + app("b", "https://b.example.com", "{name: __Secure-s}"), true},
	} {
		_, err := Parse([]byte(tc.yaml), Source{})
		got := err != nil && strings.Contains(err.Error(), "cookie.name")
		if got != tc.wantErr {
			t.Errorf("%s: error %v, want a cookie.name problem: %v", tc.name, err, tc.wantErr)
		}
	}
}
