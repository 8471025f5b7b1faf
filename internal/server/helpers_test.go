package server

import (
	"io"
	"testing"

	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/session"
)

// testConfig is a one-app configuration whose provider is never contacted
// unless a test starts one. extra is appended under the app.
func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	yaml := `
apps:
  - name: web
    url: https://app.example.com
    oidc:
      issuer: http://127.0.0.1:1
      clientID: web
      clientSecret: s3cret
    cors:
      allowedOrigins: [https://partner.example.com]
    apis:
      - prefix: /api/
        upstream: http://127.0.0.1:1/base/
` + extra
	cfg, err := config.Parse([]byte(yaml), config.Source{})
	if err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

func newTestServer(t *testing.T, cfg *config.Config) *Server {
	t.Helper()
	mem := session.NewMemory(nil)
	keys, err := session.NewKeyring([][]byte{session.RandomKey()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Logger: zerolog.New(io.Discard), Backend: mem, CookieStore: mem.CookieStore(), Keys: keys})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	return s
}

func cfgWithURL(t *testing.T, appURL string) (*config.Config, error) {
	t.Helper()
	cfg, err := cfgWithURLExtra(appURL, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, nil
}

func cfgWithURLExtra(appURL, extra string) (*config.Config, error) {
	yaml := `
apps:
  - name: web
    url: ` + appURL + `
    oidc:
      issuer: http://127.0.0.1:1
      clientID: web
      clientSecret: s3cret
` + extra
	return config.Parse([]byte(yaml), config.Source{})
}

func newServerNoT(cfg *config.Config) (*Server, error) {
	mem := session.NewMemory(nil)
	keys, err := session.NewKeyring([][]byte{session.RandomKey()})
	if err != nil {
		return nil, err
	}
	return New(cfg, Deps{Logger: zerolog.New(io.Discard), Backend: mem, CookieStore: mem.CookieStore(), Keys: keys})
}

func cfgWithTwoApps(upstream string) (*config.Config, error) {
	app := func(name string) string {
		return `
  - name: ` + name + `
    url: https://example.com/` + name + `
    oidc:
      issuer: http://127.0.0.1:1
      clientID: ` + name + `
      clientSecret: s3cret
    apis:
      - prefix: /api/
        upstream: ` + upstream + `
        requireToken: false
`
	}
	return config.Parse([]byte("apps:"+app("a")+app("b")), config.Source{})
}
