package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestEnvName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ app, want string }{
		{"shop", "BFF_APP_SHOP_CLIENT_SECRET"},
		{"my-app", "BFF_APP_MY_APP_CLIENT_SECRET"},
		{"web.v2", "BFF_APP_WEB_V2_CLIENT_SECRET"},
		{"Admin_UI", "BFF_APP_ADMIN_UI_CLIENT_SECRET"},
	} {
		if got := EnvName(tc.app); got != tc.want {
			t.Errorf("EnvName(%q) = %q, want %q", tc.app, got, tc.want)
		}
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	y := `listen: ":1"
adminListen: ":2"
session:
  store: redis
  redis: {url: "redis://yaml:6379/0"}
  encryptionKeys: [` + key32 + `]
apps:
  - name: my-app
    url: https://a.example.com
    oidc: {issuer: https://id.example.com, clientID: a, clientSecret: from-yaml}
  - name: web.v2
    url: https://b.example.com
    oidc: {issuer: https://id.example.com, clientID: b, clientSecret: from-yaml, clientSecretFile: /s}
  - name: plain
    url: https://c.example.com
    oidc: {issuer: https://id.example.com, clientID: c, clientSecret: kept}
`
	c := mustParse(t, y, fakeEnv{env: map[string]string{
		"BFF_LISTEN":                      "127.0.0.1:8081",
		"BFF_ADMIN_LISTEN":                "off",
		"BFF_REDIS_URL":                   "rediss://:pw@redis.internal:6380/2",
		"BFF_SESSION_ENCRYPTION_KEYS":     " " + k1 + " ,, " + k2 + " ",
		"BFF_APP_MY_APP_CLIENT_SECRET":    "env-a",
		"BFF_APP_WEB_V2_CLIENT_SECRET":    "env-b", // overrides both YAML settings without a conflict
		"BFF_APP_UNKNOWN_CLIENT_SECRET":   "ignored",
		"BFF_APP_PLAIN_CLIENT_SECRET_OLD": "ignored",
	}})
	for _, tc := range []struct {
		key, got, want string
	}{
		{"listen", c.Listen, "127.0.0.1:8081"},
		{"adminListen", c.AdminListen, "off"},
		{"session.redis.url", c.Session.Redis.URL, "rediss://:pw@redis.internal:6380/2"},
		{"apps[0].oidc.clientSecret", c.Apps[0].OIDC.ClientSecret, "env-a"},
		{"apps[1].oidc.clientSecret", c.Apps[1].OIDC.ClientSecret, "env-b"},
		{"apps[2].oidc.clientSecret", c.Apps[2].OIDC.ClientSecret, "kept"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
	keys := c.Session.Keys()
	if len(keys) != 2 || keys[0][0] != 1 || keys[1][0] != 2 {
		t.Errorf("keys = %v, want the two environment keys in order (they replace the YAML ones)", keys)
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	y := doc("session: {store: redis, encryptionKeysFile: /run/keys}",
		"oidc: {issuer: https://id.example.com, clientID: c, clientSecretFile: /run/secret}")
	c := mustParse(t, y, fakeEnv{files: map[string]string{
		"/run/secret": "  file-secret\n",
		"/run/keys":   k1 + "\n\n" + k2 + "\r\n",
	}})
	if got := c.Apps[0].OIDC.ClientSecret; got != "file-secret" {
		t.Errorf("client secret = %q, want the trimmed file content", got)
	}
	if keys := c.Session.Keys(); len(keys) != 2 || keys[0][0] != 1 || keys[1][0] != 2 {
		t.Errorf("keys = %v, want the file's two keys in order", keys)
	}
	// The environment wins over a file, which is then not read at all.
	c = mustParse(t, y, fakeEnv{env: map[string]string{"BFF_APP_SHOP_CLIENT_SECRET": "env", "BFF_SESSION_ENCRYPTION_KEYS": k2}})
	if got := c.Apps[0].OIDC.ClientSecret; got != "env" {
		t.Errorf("client secret = %q, want the environment's", got)
	}
	if keys := c.Session.Keys(); len(keys) != 1 || keys[0][0] != 2 {
		t.Errorf("keys = %v, want the environment's", keys)
	}
}

// TestSecretsNeverInProblems feeds invalid configs carrying distinctive
// secrets in every place a secret can be, and checks no problem text holds
// one.
func TestSecretsNeverInProblems(t *testing.T) {
	t.Parallel()
	short := base64.StdEncoding.EncodeToString([]byte("XYZZY-KEY-SHORT"))
	oidc := func(secret string) string {
		return "oidc: {issuer: https://id.example.com, clientID: c, clientSecret: " + secret + "}"
	}
	for _, tc := range []struct {
		name, yaml string
		env        fakeEnv
	}{
		{"client secret in an invalid app", doc("", "url: ftp://x", oidc("XYZZY-CS-1")), fakeEnv{}},
		{"client secret as a list", doc("", oidc("[XYZZY-CS-2]")), fakeEnv{}},
		{"client secret as a mapping", doc("", oidc("{a: XYZZY-CS-3}")), fakeEnv{}},
		{"client secret duplicated", doc("", "oidc: {issuer: https://id.example.com, clientID: c, clientSecret: a, clientSecret: XYZZY-CS-4}"), fakeEnv{}},
		{"client secret under a typo", doc("", "oidc: {issuer: https://id.example.com, clientID: c, clientSecrett: XYZZY-CS-5}"), fakeEnv{}},
		{"client secret in broken YAML", doc("", `oidc: {clientSecret: "XYZZY-CS-6`), fakeEnv{}},
		{"client secret from env", doc("", "oidc: {clientID: c}"), fakeEnv{env: map[string]string{"BFF_APP_SHOP_CLIENT_SECRET": "XYZZY-CS-7"}}},
		{"client secret file read error", doc("", "oidc: {clientID: c, clientSecretFile: /s}"), fakeEnv{files: nil}},
		{"key not base64", doc("session: {encryptionKeys: ['XYZZY-KEY-1!']}"), fakeEnv{}},
		{"key too short", doc("session: {encryptionKeys: [" + short + "]}"), fakeEnv{}},
		{"key as a string", doc("session: {encryptionKeys: XYZZY-KEY-2}"), fakeEnv{}},
		{"key from env", doc(""), fakeEnv{env: map[string]string{"BFF_SESSION_ENCRYPTION_KEYS": "XYZZY-KEY-3,XYZZY-KEY-4"}}},
		{"key from file", doc("session: {encryptionKeysFile: /k}"), fakeEnv{files: map[string]string{"/k": "XYZZY-KEY-5\n" + short}}},
		{"redis password, bad port", doc("session: {store: redis, redis: {url: 'redis://:XYZZY-PW-1@host:port/0'}}"), fakeEnv{}},
		{"redis password, bad scheme", doc("session: {store: redis, redis: {url: 'http://user:XYZZY-PW-2@host/0'}}"), fakeEnv{}},
		{"redis password, bad escape", doc("session: {store: redis, redis: {url: 'redis://:XYZZY-PW-3%zz@host/0'}}"), fakeEnv{}},
		{"redis password from env", doc("session: {store: redis}"), fakeEnv{env: map[string]string{"BFF_REDIS_URL": "redis://:XYZZY-PW-4@:bad"}}},
		{"redis URL as a list", doc("session: {redis: {url: ['redis://:XYZZY-PW-5@h']}}"), fakeEnv{}},
		{"redis section as a string", doc("session: {redis: 'redis://:XYZZY-PW-6@h'}"), fakeEnv{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := tc.env.source()
			if tc.name == "client secret file read error" {
				src.ReadFile = func(string) ([]byte, error) { return nil, errors.New("XYZZY-CS-8 leaked by a reader") }
			}
			_, err := Parse([]byte(tc.yaml), src)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want problems", tc.yaml)
			}
			text := err.Error() + fmt.Sprint(err)
			for _, secret := range []string{"XYZZY", short, strings.TrimRight(short, "=")[:8]} {
				if strings.Contains(text, secret) {
					t.Errorf("Parse(%q) problems contain %q:\n%s", tc.yaml, secret, text)
				}
			}
		})
	}
}

func TestRedactedURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"redis://:hunter2@r:6379/0", "redis://:xxxxx@r:6379/0"},
		{"redis://r:6379/0", "redis://r:6379/0"},
		{"redis://:%zz@r/0", "(unparsable URL)"},
	} {
		if got := (Redis{URL: tc.url}).RedactedURL(); got != tc.want {
			t.Errorf("RedactedURL(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestOriginsNormalised(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"HTTPS://App.Example.COM", "https://app.example.com"},
		{"https://app.example.com/", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com"},
		{"http://localhost:80", "http://localhost"},
		{"https://app.example.com:8443", "https://app.example.com:8443"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example"},
		{"https://bücher.example", ""},
		{"https://app.example.com/path", ""},
		{"https://app.example.com?x", ""},
		{"https://app.example.com#x", ""},
		{"https://u@app.example.com", ""},
		{"https://*.example.com", ""},
		{"null", ""},
		{"app.example.com", ""},
		{"ftp://app.example.com", ""},
		{"https://", ""},
	} {
		y := doc("", "cors: {allowedOrigins: ['"+tc.in+"']}", "returnTo: {allowedOrigins: ['"+tc.in+"']}")
		c, p := parse(t, y, fakeEnv{})
		switch {
		case tc.want == "" && p == nil:
			t.Errorf("origin %q accepted as %q, want refused", tc.in, c.Apps[0].CORS.AllowedOrigins[0])
		case tc.want == "":
			if !slices.ContainsFunc(p, func(s string) bool { return strings.HasPrefix(s, "apps[0].cors.allowedOrigins[0]:") }) ||
				!slices.ContainsFunc(p, func(s string) bool { return strings.HasPrefix(s, "apps[0].returnTo.allowedOrigins[0]:") }) {
				t.Errorf("origin %q: problems %v, want both keys named", tc.in, p)
			}
		case p != nil:
			t.Errorf("origin %q refused: %v, want %q", tc.in, p, tc.want)
		case c.Apps[0].CORS.AllowedOrigins[0] != tc.want || c.Apps[0].ReturnTo.AllowedOrigins[0] != tc.want:
			t.Errorf("origin %q = %q / %q, want %q", tc.in, c.Apps[0].CORS.AllowedOrigins[0], c.Apps[0].ReturnTo.AllowedOrigins[0], tc.want)
		}
	}
}
