package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, returns exactly one of a config
// and a non-empty Problems, and gives the same answer twice.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		doc(""),
		doc("trustedProxies: [10.0.0.0/8, '::ffff:1.2.3.4']\nsession: {store: redis, encryptionKeys: ["+key32+"]}",
			"apis: [{prefix: /api/, upstream: 'http://u/base', methods: [GET]}]", "cookie: {domain: example.com}"),
		"apps: [\n",
		"{{{{",
		"apps:\n\t- name: x\n",
		"- a\n- b\n",
		"listen: !!binary aGVsbG8=\n",
		"limits: {maxBodyBytes: 99999999999999999999999999999, maxHeaderBytes: -9223372036854775809}\n",
		"session: {idleTimeout: 9999999999999999h, loginTimeout: 1e308s}\n",
		"a: &a [*a, *a]\nb: *a\n",
		"x: &x {a: 1}\n<<: *x\n",
		"apps:\n  - name: \"\u202e\u0000\ufeff\"\n    url: \"https://\u0430pp.example.com/\u00e9\"\n    oidc: {issuer: \"https://\U0001F600\", clientID: \"\xff\xfe\"}\n",
		"\ufeffapps: []\n",
		"---\n---\n---\n",
		strings.Repeat("[", 200),
		"apps:\n  - <<: [*missing]\n",
	} {
		f.Add([]byte(seed))
	}
	src := fakeEnv{
		env:   map[string]string{"BFF_APP_SHOP_CLIENT_SECRET": "env"},
		files: map[string]string{"/s": "file-secret", "/k": key32},
	}.source()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, src)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %v, %v: want exactly one non-nil", data, c != nil, err)
		}
		if err != nil {
			var p Problems
			if !errors.As(err, &p) || len(p) == 0 {
				t.Fatalf("Parse(%q) error %T %v: want non-empty Problems", data, err, err)
			}
			for _, s := range p {
				if s == "" {
					t.Fatalf("Parse(%q): empty problem in %q", data, p)
				}
			}
		}
		_, err2 := Parse(data, src)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("Parse(%q) not deterministic:\n%v\n%v", data, err, err2)
		}
	})
}
