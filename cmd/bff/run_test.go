package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runArgs(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"bff"}, args...), func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRunCommands(t *testing.T) {
	if out, _, err := runArgs(t, nil, "version"); err != nil || !strings.HasPrefix(out, "bff ") {
		t.Fatalf("version: %q %v", out, err)
	}
	if _, errOut, err := runArgs(t, nil, "frobnicate"); !errors.Is(err, errUsage) || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: %v %q", err, errOut)
	}
	if _, _, err := runArgs(t, nil); !errors.Is(err, errUsage) {
		t.Fatalf("no command: %v", err)
	}
	if _, errOut, err := runArgs(t, nil, "serve"); !errors.Is(err, errUsage) || !strings.Contains(errOut, "--config") {
		t.Fatalf("serve without config: %v %q", err, errOut)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte(`
apps:
  - name: shop
    url: https://app.example.com
    oidc:
      issuer: https://example.zitadel.cloud
      clientID: "123"
    apis:
      - prefix: /api/
        upstream: http://orders.internal:8080/
`), 0o600)
	os.WriteFile(bad, []byte(`
apps:
  - name: shop
    url: http://app.example.com
    oidc:
      issuer: https://example.zitadel.cloud
      clientId: "123"
      clientSecret: super-secret-value
    cookie: {name: __Host-x, domain: example.com}
`), 0o600)
	env := map[string]string{"BFF_APP_SHOP_CLIENT_SECRET": "env-secret-value"}
	out, errOut, err := runArgs(t, env, "config", "check", "--config", good, "--offline")
	if err != nil || !strings.Contains(out, "shop") || !strings.Contains(out, "/api/ -> http://orders.internal:8080/") {
		t.Fatalf("good config: %v\n%s\n%s", err, out, errOut)
	}
	if strings.Contains(out+errOut, "env-secret-value") {
		t.Fatal("config check printed the client secret")
	}
	_, errOut, err = runArgs(t, nil, "config", "check", "--config", bad, "--offline")
	if !errors.Is(err, errCheckFailed) {
		t.Fatalf("bad config: %v", err)
	}
	for _, want := range []string{"apps[0].oidc.clientId", "apps[0].url", "apps[0].cookie.domain"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("problems lack %s:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "super-secret-value") {
		t.Fatal("config check printed the client secret")
	}
	noSPA := filepath.Join(dir, "nospa.yaml")
	os.WriteFile(noSPA, []byte(`
apps:
  - name: shop
    url: https://app.example.com
    oidc: {issuer: https://example.zitadel.cloud, clientID: "123", clientSecret: s}
    spa: {dir: `+filepath.Join(dir, "missing")+`}
`), 0o600)
	if _, errOut, err := runArgs(t, nil, "config", "check", "--config", noSPA, "--offline"); !errors.Is(err, errCheckFailed) || !strings.Contains(errOut, "apps[0].spa.dir: no index.html") {
		t.Fatalf("missing spa.dir: %v %q", err, errOut)
	}
}

func TestSessionsCLI(t *testing.T) {
	var got *http.Request
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(`{"sessions":[{"id":"abc","app":"shop","sub":"alice","createdAt":"2026-01-01T00:00:00Z","lastSeen":"2026-01-01T01:00:00Z","expiresAt":"2026-01-02T00:00:00Z"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"revoked":1}`))
	}))
	defer admin.Close()
	env := map[string]string{"BFF_ADMIN_URL": admin.URL, "BFF_ADMIN_TOKEN": "tok"}
	out, _, err := runArgs(t, env, "sessions", "list", "--sub", "alice")
	if err != nil || !strings.Contains(out, "abc") || got.URL.Query().Get("sub") != "alice" || got.Header.Get("Authorization") != "Bearer tok" {
		t.Fatalf("list: %v %q %v", err, out, got)
	}
	out, _, err = runArgs(t, env, "sessions", "revoke", "--id", "abc")
	if err != nil || got.Method != http.MethodDelete || got.URL.Path != "/admin/sessions/abc" || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %q %s %s", err, out, got.Method, got.URL)
	}
	if _, _, err := runArgs(t, env, "sessions", "revoke"); !errors.Is(err, errUsage) {
		t.Fatalf("revoke without target: %v", err)
	}
}
