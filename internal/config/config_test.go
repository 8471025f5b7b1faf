package config

import (
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// appLines are the app settings of the minimal valid config.
var appLines = []string{
	"name: shop",
	"url: https://app.example.com",
	"oidc: {issuer: https://id.example.com, clientID: shop-client, clientSecret: s3cret}",
}

// doc returns a one-app config: top-level lines, then the minimal app whose
// lines are each replaced by a line of over with the same key, plus the
// other lines of over.
func doc(top string, over ...string) string {
	lines := slices.Clone(appLines)
	for _, o := range over {
		k, _, _ := strings.Cut(o, ":")
		if i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, k+":") }); i >= 0 {
			lines[i] = o
		} else {
			lines = append(lines, o)
		}
	}
	return top + "\napps:\n  - " + strings.Join(lines, "\n    ") + "\n"
}

type fakeEnv struct {
	env   map[string]string
	files map[string]string
}

func (f fakeEnv) source() Source {
	return Source{
		Getenv: func(k string) string { return f.env[k] },
		ReadFile: func(name string) ([]byte, error) {
			if v, ok := f.files[name]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
	}
}

// parse returns the config or the problems; exactly one is non-nil.
func parse(t *testing.T, yaml string, f fakeEnv) (*Config, Problems) {
	t.Helper()
	c, err := Parse([]byte(yaml), f.source())
	if (c == nil) == (err == nil) {
		t.Fatalf("Parse returned config %v and error %v: want exactly one", c != nil, err)
	}
	if err == nil {
		return c, nil
	}
	var p Problems
	if !errors.As(err, &p) || len(p) == 0 {
		t.Fatalf("Parse error %T %v: want non-empty Problems", err, err)
	}
	return nil, p
}

func mustParse(t *testing.T, yaml string, f fakeEnv) *Config {
	t.Helper()
	c, p := parse(t, yaml, f)
	if p != nil {
		t.Fatalf("Parse(%s):\n%v", yaml, p)
	}
	return c
}

func TestParseMinimalGetsDefaults(t *testing.T) {
	t.Parallel()
	c := mustParse(t, doc(""), fakeEnv{})
	a := c.Apps[0]
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"adminListen", c.AdminListen, "127.0.0.1:9090"},
		{"trustedProxies", len(c.TrustedProxies), 0},
		{"log.format", c.Log.Format, "json"},
		{"log.level", c.Log.Level, "info"},
		{"session.store", c.Session.Store, "memory"},
		{"session.redis.url", c.Session.Redis.URL, "redis://127.0.0.1:6379/0"},
		{"session.redis.keyPrefix", c.Session.Redis.KeyPrefix, "bff:"},
		{"session.redis.poolSize", c.Session.Redis.PoolSize, 32},
		{"session.redis.dialTimeout", c.Session.Redis.DialTimeout, 500 * time.Millisecond},
		{"session.redis.readTimeout", c.Session.Redis.ReadTimeout, 500 * time.Millisecond},
		{"session.redis.writeTimeout", c.Session.Redis.WriteTimeout, 500 * time.Millisecond},
		{"session.idleTimeout", c.Session.IdleTimeout, 8 * time.Hour},
		{"session.absoluteLifetime", c.Session.AbsoluteLifetime, 24 * time.Hour},
		{"session.encryptionKeys", len(c.Session.Keys()), 0},
		{"session.loginTimeout", c.Session.LoginTimeout, 10 * time.Minute},
		{"session.maxPendingLogins", c.Session.MaxPendingLogins, 5},
		{"limits.maxHeaderBytes", c.Limits.MaxHeaderBytes, 32 << 10},
		{"limits.maxBodyBytes", c.Limits.MaxBodyBytes, int64(10 << 20)},
		{"limits.loginRatePerMinute", c.Limits.LoginRatePerMinute, 60},
		{"limits.providerTimeout", c.Limits.ProviderTimeout, 10 * time.Second},
		{"limits.upstreamTimeout", c.Limits.UpstreamTimeout, 30 * time.Second},
		{"limits.shutdownTimeout", c.Limits.ShutdownTimeout, 15 * time.Second},
		{"apps[0].url parsed", a.ParsedURL().String(), "https://app.example.com"},
		{"apps[0].oidc.authMethod", a.OIDC.AuthMethod, "client_secret_basic"},
		{"apps[0].oidc.scopes", a.OIDC.Scopes, []string{"openid", "profile", "email", "offline_access"}},
		{"apps[0].oidc.redirectURL", a.OIDC.RedirectURL, "https://app.example.com/auth/callback"},
		{"apps[0].oidc.postLogoutRedirectURL", a.OIDC.PostLogoutRedirectURL, "https://app.example.com/"},
		{"apps[0].oidc.idTokenHint", a.OIDC.SendIDTokenHint(), true},
		{"apps[0].oidc.refreshSkew", a.OIDC.RefreshSkew, 60 * time.Second},
		{"apps[0].oidc.defaultTokenLifetime", a.OIDC.DefaultTokenLifetime, 5 * time.Minute},
		{"apps[0].oidc.clockSkew", a.OIDC.ClockSkew, 30 * time.Second},
		{"apps[0].cookie.name", a.Cookie.Name, "__Host-bff"},
		{"apps[0].cookie.domain", a.Cookie.Domain, ""},
		{"apps[0].cookie.sameSite", a.Cookie.SameSite, "lax"},
		{"apps[0].cookie.secure", a.Cookie.CookieSecure(), true},
		{"apps[0].csrfHeader", a.CSRFHeader, "X-CSRF"},
		{"apps[0].spa.contentSecurityPolicy", a.SPA.ContentSecurityPolicy, DefaultCSP},
		{"apps[0].me.claims", a.Me.Claims, []string{"sub", "name", "given_name", "family_name", "email", "email_verified", "preferred_username"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.key, tc.got, tc.want)
		}
	}
	if want := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"; DefaultCSP != want {
		t.Errorf("DefaultCSP = %q, want the documented %q", DefaultCSP, want)
	}
}

func TestParseAppDefaultsFollowURLAndOthers(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
apps:
  - name: shop
    url: https://example.com/shop/
    oidc: {issuer: https://id.example.com, clientID: a, clientSecret: s}
    apis: [{prefix: /api/, upstream: "http://orders:8080/", requireToken: false}, {prefix: /v2/, upstream: "http://o2"}]
  - name: blog
    url: https://blog.example.com
    oidc: {issuer: https://id.example.com, clientID: b, clientSecret: s, idTokenHint: false}
    cookie: {domain: example.com}
`, fakeEnv{})
	shop, blog := c.Apps[0], c.Apps[1]
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"apps[0].oidc.redirectURL", shop.OIDC.RedirectURL, "https://example.com/shop/auth/callback"},
		{"apps[0].oidc.postLogoutRedirectURL", shop.OIDC.PostLogoutRedirectURL, "https://example.com/shop/"},
		{"apps[0].cookie.name", shop.Cookie.Name, "__Host-bff-shop"},
		{"apps[0].apis[0].requireToken", shop.APIs[0].RequiresToken(), false},
		{"apps[0].apis[1].requireToken", shop.APIs[1].RequiresToken(), true},
		{"apps[1].cookie.name (domain set)", blog.Cookie.Name, "__Secure-bff-blog"},
		{"apps[1].oidc.idTokenHint", blog.OIDC.SendIDTokenHint(), false},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.key, tc.got, tc.want)
		}
	}
}

func TestParseStructuralProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "listne: ':8080'\n" + doc(""), "listne: unknown key (line 1)"},
		{"unknown nested key", "session:\n  redis:\n    pool: 3\n" + doc(""), "session.redis.pool: unknown key (line 3)"},
		{"unknown app key", doc("", "oidc: {issuer: https://id.example.com, clientId: x, clientID: y, clientSecret: s}"), "apps[0].oidc.clientId: unknown key (line 5)"},
		{"unknown key in second app", doc("") + "  - name: b\n    url: https://b.example.com\n    oidc: {issuer: https://i, clientID: b, clientSecret: s}\n    apis: [{prefix: /api/, upstream: http://u, method: [GET]}]\n",
			"apps[1].apis[0].method: unknown key (line 9)"},
		{"wrong case is unknown", doc("", "Cookie: {name: x}"), "apps[0].Cookie: unknown key (line 6)"},
		{"duplicate key", "listen: ':1'\nlisten: ':2'\n" + doc(""), "listen: duplicate key (line 2, first at line 1)"},
		{"list expected", "trustedProxies: 10.0.0.0/8\n" + doc(""), "trustedProxies: must be a list (line 1)"},
		{"mapping expected", "session: redis\n" + doc(""), "session: must be a mapping (line 1)"},
		{"scalar expected", "listen: [a, b]\n" + doc(""), "listen: must be a string (line 1)"},
		{"bad duration", "session: {idleTimeout: banana}\n" + doc(""), "session.idleTimeout: must be a duration like 30s or 5m (line 1)"},
		{"duration as number", "session: {idleTimeout: 30}\n" + doc(""), "session.idleTimeout: must be a duration like 30s or 5m (line 1)"},
		{"huge number", "limits: {maxBodyBytes: 99999999999999999999999999}\n" + doc(""), "limits.maxBodyBytes: must be a whole number (line 1)"},
		{"bad bool", doc("", "cookie: {secure: maybe}"), "apps[0].cookie.secure: must be true or false (line 6)"},
		{"apps not a list", "apps: {name: x}\n", "apps: must be a list (line 1)"},
		{"root not a mapping", "- a\n- b\n", "config: must be a mapping (line 1)"},
		{"merge of a scalar", "session: {<<: 5}\n" + doc(""), "session: a merge (<<) must name a mapping (line 1)"},
		{"non-scalar key", "? [a, b]\n: c\n" + doc(""), "config: keys must be plain names (line 1)"},
		{"two documents", doc("") + "---\nlisten: ':1'\n", "config: only one YAML document is allowed"},
		{"empty file", "", "apps: at least one app is required"},
		{"syntax error", "apps: [\n", "yaml: line 1: did not find expected node content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, p := parse(t, tc.yaml, fakeEnv{})
			if !slices.Contains(p, tc.want) {
				t.Errorf("Parse(%q) problems:\n%v\nwant an entry %q", tc.yaml, p, tc.want)
			}
		})
	}
}

func TestParseAcceptsYAMLFeatures(t *testing.T) {
	t.Parallel()
	c := mustParse(t, `
apps:
  - &base
    name: shop
    url: https://app.example.com
    oidc: &oidc {issuer: https://id.example.com, clientID: a, clientSecret: s}
    me: {claims: [sub]}
  - <<: *base
    name: blog
    url: https://blog.example.com
    oidc: {<<: *oidc, clientID: b}
`, fakeEnv{})
	if b := c.Apps[1]; b.Name != "blog" || b.OIDC.ClientID != "b" || b.OIDC.Issuer != "https://id.example.com" || !slices.Equal(b.Me.Claims, []string{"sub"}) {
		t.Errorf("merged app = %+v, want blog with the anchor's issuer and claims", b)
	}
}

func TestParseMergedUnknownKey(t *testing.T) {
	t.Parallel()
	_, p := parse(t, doc("", "oidc: {<<: {issuer: https://i, secret: x}, clientID: a, clientSecret: s}"), fakeEnv{})
	if want := "apps[0].oidc.secret: unknown key (line 5)"; !slices.Contains(p, want) {
		t.Errorf("problems:\n%v\nwant %q", p, want)
	}
}

// TestParseMergeBomb checks that nested merges of aliases (9^11 mappings if
// expanded) cost a problem, not minutes.
func TestParseMergeBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("session:\n  <<: &m0 {store: memory}\n")
	for i := 1; i < 12; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d,", i-1), 9), ",")
		fmt.Fprintf(&b, "  <<: &m%d {<<: [%s]}\n", i, refs)
	}
	_, p := parse(t, b.String()+doc(""), fakeEnv{})
	if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, "too many nodes or aliases") }) {
		t.Errorf("problems %v, want one about too many nodes", p)
	}
}

// TestAddYAMLHidesValues covers the fallback for decoding errors checkKeys
// did not foresee: the value yaml quotes is removed.
func TestAddYAMLHidesValues(t *testing.T) {
	t.Parallel()
	p := problems{lines: map[string]int{}}
	p.addYAML(&yaml.TypeError{Errors: []string{"line 3: cannot unmarshal !!str `XYZZY-s...` into []string", "line 4: cannot unmarshal !!str `a`b` into int"}})
	p.addYAML(errors.New("yaml: invalid map key: []interface {}{\"XYZZY\"}"))
	p.addYAML(errors.New("yaml: map merge requires map or sequence of maps as the value"))
	want := Problems{"config: line 3: cannot unmarshal !!str into []string", "config: line 4: cannot unmarshal !!str into int",
		"config: the YAML cannot be decoded", "config: yaml: map merge requires map or sequence of maps as the value"}
	if got := p.sorted(); !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}
