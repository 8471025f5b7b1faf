package config

import (
	"slices"
	"strings"
	"testing"
)

// key32 is a valid 32-byte key, base64.
const key32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

const secondApp = "  - name: blog\n    url: https://blog.example.com\n    oidc: {issuer: https://id.example.com, clientID: b, clientSecret: s}\n"

func TestValidationRules(t *testing.T) {
	t.Parallel()
	const oidc = "oidc: {issuer: https://id.example.com, clientID: c, clientSecret: s, "
	for _, tc := range []struct {
		name, yaml string
		env        fakeEnv
		want       string
	}{
		// Global settings.
		{"listen not host:port", doc("listen: nohostport"), fakeEnv{}, "listen: not host:port"},
		{"listen port out of range", doc("listen: ':99999'"), fakeEnv{}, "listen: not host:port (port 0-65535)"},
		{"adminListen bad", doc("adminListen: admin"), fakeEnv{}, `adminListen: not host:port or "off"`},
		{"adminListen equals listen", doc("listen: ':9000'\nadminListen: ':9000'"), fakeEnv{}, "adminListen: must differ from listen (keep the admin API private)"},
		{"trusted proxy not CIDR", doc("trustedProxies: [10.0.0.0/33]"), fakeEnv{}, `trustedProxies[0]: not a CIDR or IP: "10.0.0.0/33"`},
		{"trusted proxy hostname", doc("trustedProxies: [10.0.0.0/8, lb.internal]"), fakeEnv{}, `trustedProxies[1]: not a CIDR or IP: "lb.internal"`},
		{"log format", doc("log: {format: xml}"), fakeEnv{}, `log.format: must be json or console, got "xml"`},
		{"log level", doc("log: {level: verbose}"), fakeEnv{}, `log.level: must be debug, info, warn or error, got "verbose"`},
		// Session.
		{"store unknown", doc("session: {store: etcd}"), fakeEnv{}, `session.store: must be memory or redis, got "etcd"`},
		{"redis url scheme", doc("session: {store: redis, encryptionKeys: [" + key32 + "], redis: {url: 'http://r:6379'}}"), fakeEnv{}, "session.redis.url: must be redis://[:password@]host:port/db or rediss://…"},
		{"redis pool size", doc("session: {store: redis, encryptionKeys: [" + key32 + "], redis: {poolSize: -1}}"), fakeEnv{}, "session.redis.poolSize: must be at least 1"},
		{"redis timeout", doc("session: {store: redis, encryptionKeys: [" + key32 + "], redis: {readTimeout: -1s}}"), fakeEnv{}, "session.redis.readTimeout: must be positive"},
		{"redis needs keys", doc("session: {store: redis}"), fakeEnv{}, "session.encryptionKeys: required with the redis store (32-byte keys, base64; or BFF_SESSION_ENCRYPTION_KEYS)"},
		{"key not base64", doc("session: {encryptionKeys: ['!!!']}"), fakeEnv{}, "session.encryptionKeys[0]: not base64"},
		{"key too short", doc("session: {encryptionKeys: [" + key32 + ", c2hvcnQ=]}"), fakeEnv{}, "session.encryptionKeys[1]: must decode to 32 bytes, got 5"},
		{"keys and keys file", doc("session: {encryptionKeys: [" + key32 + "], encryptionKeysFile: /k}"), fakeEnv{files: map[string]string{"/k": key32}}, "session.encryptionKeysFile: set together with encryptionKeys; use one"},
		{"keys file missing", doc("session: {encryptionKeysFile: /nope}"), fakeEnv{}, `session.encryptionKeysFile: cannot read "/nope": file does not exist`},
		{"keys file empty", doc("session: {encryptionKeysFile: /k}"), fakeEnv{files: map[string]string{"/k": "\n \n"}}, "session.encryptionKeysFile: the file holds no key"},
		{"idle timeout short", doc("session: {idleTimeout: 30s}"), fakeEnv{}, "session.idleTimeout: must be at least 1m"},
		{"absolute below idle", doc("session: {idleTimeout: 2h, absoluteLifetime: 1h}"), fakeEnv{}, "session.absoluteLifetime: must not be shorter than idleTimeout"},
		{"login timeout short", doc("session: {loginTimeout: 10s}"), fakeEnv{}, "session.loginTimeout: must be between 30s and 1h"},
		{"login timeout long", doc("session: {loginTimeout: 2h}"), fakeEnv{}, "session.loginTimeout: must be between 30s and 1h"},
		{"pending logins high", doc("session: {maxPendingLogins: 21}"), fakeEnv{}, "session.maxPendingLogins: must be between 1 and 20"},
		{"pending logins negative", doc("session: {maxPendingLogins: -1}"), fakeEnv{}, "session.maxPendingLogins: must be between 1 and 20"},
		// Limits.
		{"header bytes", doc("limits: {maxHeaderBytes: 100}"), fakeEnv{}, "limits.maxHeaderBytes: must be at least 1024"},
		{"body bytes", doc("limits: {maxBodyBytes: -1}"), fakeEnv{}, "limits.maxBodyBytes: must be positive"},
		{"login rate", doc("limits: {loginRatePerMinute: -5}"), fakeEnv{}, "limits.loginRatePerMinute: must be positive"},
		{"provider timeout", doc("limits: {providerTimeout: -1s}"), fakeEnv{}, "limits.providerTimeout: must be positive"},
		{"upstream timeout", doc("limits: {upstreamTimeout: -1s}"), fakeEnv{}, "limits.upstreamTimeout: must be positive"},
		{"shutdown timeout", doc("limits: {shutdownTimeout: -1s}"), fakeEnv{}, "limits.shutdownTimeout: must be positive"},
		// Apps.
		{"no apps", "listen: ':8080'\n", fakeEnv{}, "apps: at least one app is required"},
		{"name required", doc("", "name: ''"), fakeEnv{}, "apps[0].name: required"},
		{"name with space", doc("", "name: my shop"), fakeEnv{}, `apps[0].name: use letters, digits, '-', '_' or '.' (at most 63), got "my shop"`},
		{"name duplicate", doc("") + strings.Replace(secondApp, "blog", "shop", 1), fakeEnv{}, `apps[1].name: duplicate app name "shop" (also apps[0])`},
		{"names share env variable", doc("", "name: a-b") + strings.Replace(secondApp, "name: blog", "name: a_b", 1), fakeEnv{}, `apps[1].name: "a_b" and apps[0] share the variable BFF_APP_A_B_CLIENT_SECRET`},
		{"url required", doc("", "url: ''"), fakeEnv{}, "apps[0].url: required (the app's public origin, e.g. https://app.example.com)"},
		{"url scheme", doc("", "url: ftp://app.example.com"), fakeEnv{}, "apps[0].url: must be an absolute http(s) URL without query, fragment or userinfo"},
		{"url query", doc("", "url: https://app.example.com/?a=1"), fakeEnv{}, "apps[0].url: must be an absolute http(s) URL without query, fragment or userinfo"},
		{"url userinfo", doc("", "url: https://u:p@app.example.com"), fakeEnv{}, "apps[0].url: must be an absolute http(s) URL without query, fragment or userinfo"},
		{"url relative", doc("", "url: /shop"), fakeEnv{}, "apps[0].url: must be an absolute http(s) URL without query, fragment or userinfo"},
		{"url dirty path", doc("", "url: https://example.com/a/../b"), fakeEnv{}, "apps[0].url: the path must be clean: no '//', '.', '..' segment or escapes"},
		{"url double slash", doc("", "url: https://example.com//shop"), fakeEnv{}, "apps[0].url: the path must be clean: no '//', '.', '..' segment or escapes"},
		{"url plain http", doc("", "url: http://app.example.com"), fakeEnv{}, "apps[0].url: plain http is allowed only on a loopback host (localhost, 127.0.0.1, ::1)"},
		{"same host and path twice", doc("") + strings.Replace(secondApp, "blog.example.com", "APP.example.com", 1), fakeEnv{}, `apps[1].url: host and path "app.example.com" already used by app "shop"`},
		{"host with scheme", doc("", "hosts: ['https://www.example.com']"), fakeEnv{}, `apps[0].hosts[0]: must be host or host:port, got "https://www.example.com"`},
		{"issuer required", doc("", "oidc: {clientID: c, clientSecret: s}"), fakeEnv{}, "apps[0].oidc.issuer: required"},
		{"issuer plain http", doc("", "oidc: {issuer: http://id.example.com, clientID: c, clientSecret: s}"), fakeEnv{}, "apps[0].oidc.issuer: must be an https URL (http only on loopback)"},
		{"client ID required", doc("", "oidc: {issuer: https://id.example.com, clientSecret: s}"), fakeEnv{}, "apps[0].oidc.clientID: required"},
		{"client secret required", doc("", "oidc: {issuer: https://id.example.com, clientID: c}"), fakeEnv{}, "apps[0].oidc.clientSecret: required (or clientSecretFile, or BFF_APP_SHOP_CLIENT_SECRET)"},
		{"secret and secret file", doc("", oidc+"clientSecretFile: /s}"), fakeEnv{files: map[string]string{"/s": "x"}}, "apps[0].oidc.clientSecretFile: set together with clientSecret; use one"},
		{"secret file missing", doc("", "oidc: {issuer: https://id.example.com, clientID: c, clientSecretFile: /run/nope}"), fakeEnv{}, `apps[0].oidc.clientSecretFile: cannot read "/run/nope": file does not exist`},
		{"secret file empty", doc("", "oidc: {issuer: https://id.example.com, clientID: c, clientSecretFile: /s}"), fakeEnv{files: map[string]string{"/s": " \n"}}, "apps[0].oidc.clientSecretFile: the file is empty"},
		{"auth method", doc("", oidc+"authMethod: private_key_jwt}"), fakeEnv{}, `apps[0].oidc.authMethod: must be client_secret_basic or client_secret_post, got "private_key_jwt"`},
		{"scopes without openid", doc("", oidc+"scopes: [profile]}"), fakeEnv{}, "apps[0].oidc.scopes: must contain openid"},
		{"redirect URL other host", doc("", oidc+"redirectURL: 'https://evil.example.com/auth/callback'}"), fakeEnv{}, "apps[0].oidc.redirectURL: must be https://app.example.com/auth/callback (the BFF serves the callback)"},
		{"redirect URL other scheme", doc("", oidc+"redirectURL: 'http://app.example.com/auth/callback'}"), fakeEnv{}, "apps[0].oidc.redirectURL: must be https://app.example.com/auth/callback (the BFF serves the callback)"},
		{"redirect URL other path", doc("", oidc+"redirectURL: 'https://app.example.com/cb'}"), fakeEnv{}, "apps[0].oidc.redirectURL: must be https://app.example.com/auth/callback (the BFF serves the callback)"},
		{"post-logout relative", doc("", oidc+"postLogoutRedirectURL: /bye}"), fakeEnv{}, "apps[0].oidc.postLogoutRedirectURL: must be an absolute http(s) URL"},
		{"post-logout javascript", doc("", oidc+"postLogoutRedirectURL: 'javascript://x/%0aalert(1)'}"), fakeEnv{}, "apps[0].oidc.postLogoutRedirectURL: must be an absolute http(s) URL"},
		{"refresh skew", doc("", oidc+"refreshSkew: 2h}"), fakeEnv{}, "apps[0].oidc.refreshSkew: must be between 0 and 1h"},
		{"default token lifetime", doc("", oidc+"defaultTokenLifetime: 1s}"), fakeEnv{}, "apps[0].oidc.defaultTokenLifetime: must be at least 10s"},
		{"clock skew", doc("", oidc+"clockSkew: 10m}"), fakeEnv{}, "apps[0].oidc.clockSkew: must be between 0 and 5m"},
		{"return-to origin with path", doc("", "returnTo: {allowedOrigins: ['https://x.example.com/app']}"), fakeEnv{}, `apps[0].returnTo.allowedOrigins[0]: must be an exact origin like https://app.example.com, got "https://x.example.com/app"`},
		{"CORS wildcard", doc("", "cors: {allowedOrigins: ['*']}"), fakeEnv{}, `apps[0].cors.allowedOrigins[0]: must be an exact origin like https://app.example.com (no wildcard), got "*"`},
		{"CORS subdomain wildcard", doc("", "cors: {allowedOrigins: ['https://ok.example.com', 'https://*.example.com']}"), fakeEnv{}, `apps[0].cors.allowedOrigins[1]: must be an exact origin like https://app.example.com (no wildcard), got "https://*.example.com"`},
		{"CSRF header", doc("", "csrfHeader: 'X CSRF'"), fakeEnv{}, "apps[0].csrfHeader: not a valid header name"},
		{"SPA both", doc("", "spa: {dir: ./dist, upstream: 'http://localhost:5173'}"), fakeEnv{}, "apps[0].spa: set dir or upstream, not both"},
		{"SPA upstream", doc("", "spa: {upstream: 'localhost:5173'}"), fakeEnv{}, "apps[0].spa.upstream: must be an absolute http(s) URL without userinfo"},
		{"API prefix no slash", doc("", "apis: [{prefix: api, upstream: 'http://u'}]"), fakeEnv{}, "apps[0].apis[0].prefix: must be a clean path like /api/ (start and end with /)"},
		{"API prefix dot segment", doc("", "apis: [{prefix: /a/../b/, upstream: 'http://u'}]"), fakeEnv{}, "apps[0].apis[0].prefix: must be a clean path like /api/ (start and end with /)"},
		{"API prefix under auth", doc("", "apis: [{prefix: /auth/x/, upstream: 'http://u'}]"), fakeEnv{}, "apps[0].apis[0].prefix: must not be under /auth/"},
		{"API prefix duplicate", doc("", "apis: [{prefix: /api/, upstream: 'http://u'}, {prefix: /api/, upstream: 'http://v'}]"), fakeEnv{}, `apps[0].apis[1].prefix: duplicate prefix "/api/"`},
		{"API upstream relative", doc("", "apis: [{prefix: /api/, upstream: /x}]"), fakeEnv{}, "apps[0].apis[0].upstream: must be an absolute http(s) URL without query, fragment or userinfo"},
		{"API upstream query", doc("", "apis: [{prefix: /api/, upstream: 'http://u/?a=1'}]"), fakeEnv{}, "apps[0].apis[0].upstream: must be an absolute http(s) URL without query, fragment or userinfo"},
		{"API upstream dirty path", doc("", "apis: [{prefix: /api/, upstream: 'http://u/a/%2e%2e/'}]"), fakeEnv{}, "apps[0].apis[0].upstream: the path must be clean: no '//', '.', '..' segment or escapes"},
		{"API method lower case", doc("", "apis: [{prefix: /api/, upstream: 'http://u', methods: [GET, post]}]"), fakeEnv{}, `apps[0].apis[0].methods[1]: unknown method "post" (upper case: GET, POST, …)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, p := parse(t, tc.yaml, tc.env)
			if !slices.Contains(p, tc.want) {
				t.Errorf("Parse(%q) problems:\n%v\nwant an entry %q", tc.yaml, p, tc.want)
			}
		})
	}
}

func TestCookieRules(t *testing.T) {
	t.Parallel()
	const local = "url: http://localhost:8080"
	for _, tc := range []struct {
		name   string
		over   []string
		want   string // a problem, or "" for a valid config
		cookie string // with want "", the cookie name expected
	}{
		{"default", nil, "", "__Host-bff"},
		{"host prefix with domain refused", []string{"cookie: {name: __Host-s, domain: example.com}"}, "apps[0].cookie.domain: must be empty with a __Host- cookie name (RFC 6265bis §4.1.3.2)", ""},
		{"host prefix any case with domain refused", []string{"cookie: {name: __HOST-s, domain: example.com}"}, "apps[0].cookie.domain: must be empty with a __Host- cookie name (RFC 6265bis §4.1.3.2)", ""},
		{"host prefix not secure refused", []string{local, "cookie: {name: __Host-s, secure: false}"}, "apps[0].cookie.secure: a __Host- cookie must be Secure", ""},
		{"secure prefix not secure refused", []string{local, "cookie: {name: __Secure-s, secure: false}"}, "apps[0].cookie.secure: a __Secure- cookie must be Secure", ""},
		{"not secure on https refused", []string{"cookie: {secure: false}"}, "apps[0].cookie.secure: false is allowed only for a plain-http loopback app URL (local development)", ""},
		{"not secure on non-loopback http refused", []string{"url: http://dev.example.com", "cookie: {secure: false}"}, "apps[0].cookie.secure: false is allowed only for a plain-http loopback app URL (local development)", ""},
		{"plain http non-loopback refused", []string{"url: http://dev.example.com"}, "apps[0].url: plain http is allowed only on a loopback host (localhost, 127.0.0.1, ::1)", ""},
		{"secure on non-loopback http refused", []string{"url: http://dev.example.com"}, "apps[0].cookie.secure: a Secure cookie is never sent over plain http", ""},
		{"same-site none refused", []string{"cookie: {sameSite: none}"}, "apps[0].cookie.sameSite: must be lax or strict (none would send the session cross-site)", ""},
		{"same-site None refused", []string{"cookie: {sameSite: None}"}, "apps[0].cookie.sameSite: must be lax or strict (none would send the session cross-site)", ""},
		{"domain not containing host refused", []string{"cookie: {name: s, domain: other.com}"}, `apps[0].cookie.domain: "other.com" does not contain the app host "app.example.com"`, ""},
		{"domain only dot refused", []string{"cookie: {name: s, domain: .}"}, `apps[0].cookie.domain: "." does not contain the app host "app.example.com"`, ""},
		{"bad name refused", []string{"cookie: {name: 'a;b'}"}, "apps[0].cookie.name: not a valid cookie name", ""},
		{"loopback dev", []string{local, "cookie: {secure: false}"}, "", "bff"},
		{"loopback IPv6 dev", []string{"url: 'http://[::1]:8080'", "cookie: {secure: false}"}, "", "bff"},
		{"loopback 127/8 dev", []string{"url: 'http://127.0.0.2:8080'", "cookie: {secure: false}"}, "", "bff"},
		{"localhost subdomain dev", []string{"url: 'http://app.localhost:8080'", "cookie: {secure: false}"}, "", "bff"},
		{"domain gives __Secure- name", []string{"cookie: {domain: example.com}"}, "", "__Secure-bff"},
		{"strict any case", []string{"cookie: {sameSite: Strict}"}, "", "__Host-bff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			y := doc("", tc.over...)
			c, p := parse(t, y, fakeEnv{})
			if tc.want != "" {
				if !slices.Contains(p, tc.want) {
					t.Errorf("Parse(%q) problems:\n%v\nwant an entry %q", y, p, tc.want)
				}
				return
			}
			if p != nil {
				t.Fatalf("Parse(%q): %v, want valid", y, p)
			}
			if got := c.Apps[0].Cookie.Name; got != tc.cookie {
				t.Errorf("cookie name = %q, want %q", got, tc.cookie)
			}
			if got := c.Apps[0].Cookie.SameSite; got != "lax" && got != "strict" {
				t.Errorf("sameSite = %q, want lower case", got)
			}
		})
	}
}

// TestManyProblemsAllReportedInFileOrder checks that one pass finds every
// problem, in the order of the file, the same on every run.
func TestManyProblemsAllReportedInFileOrder(t *testing.T) {
	t.Parallel()
	y := `listen: nohostport
log: {format: xml, level: loud}
session:
  store: redis
  idleTimeout: 30s
  bogus: 1
limits: {maxHeaderBytes: 10}
apps:
  - name: shop
    url: http://app.example.com
    oidc: {issuer: https://id.example.com}
    cookie: {sameSite: none}
  - name: blog
    url: https://blog.example.com
    oidc: {clientID: b, clientSecret: s, clientSecretFile: /s}
`
	want := Problems{
		"listen: not host:port",
		`log.format: must be json or console, got "xml"`,
		`log.level: must be debug, info, warn or error, got "loud"`,
		"session.encryptionKeys: required with the redis store (32-byte keys, base64; or BFF_SESSION_ENCRYPTION_KEYS)", // at session:, line 3
		"session.idleTimeout: must be at least 1m",
		"session.bogus: unknown key (line 6)",
		"limits.maxHeaderBytes: must be at least 1024",
		"apps[0].url: plain http is allowed only on a loopback host (localhost, 127.0.0.1, ::1)",
		"apps[0].oidc.clientID: required",
		"apps[0].oidc.clientSecret: required (or clientSecretFile, or BFF_APP_SHOP_CLIENT_SECRET)",
		"apps[0].cookie.secure: a Secure cookie is never sent over plain http",
		"apps[0].cookie.sameSite: must be lax or strict (none would send the session cross-site)",
		"apps[1].oidc.clientSecretFile: set together with clientSecret; use one",
		"apps[1].oidc.issuer: required",
	}
	_, got := parse(t, y, fakeEnv{})
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for range 20 {
		if _, again := parse(t, y, fakeEnv{}); !slices.Equal(again, got) {
			t.Fatalf("second run gave\n%v\nfirst\n%v", again, got)
		}
	}
}
