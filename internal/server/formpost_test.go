package server

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/devidp"
)

// TestFormPostCallback: with response_mode=form_post the provider POSTs
// the code cross-site. The login cookie (SameSite=None; Secure) survives
// that POST; the session cookie stays SameSite=Lax.
func TestFormPostCallback(t *testing.T) {
	idpSrv := httptest.NewUnstartedServer(nil)
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)
	idp, err := devidp.New(devidp.Config{
		Issuer: idpSrv.URL, Logger: zerolog.New(io.Discard),
		Clients: []devidp.Client{{ID: "web", Secret: "s3cret", RedirectURIs: []string{"https://app.example.com/auth/callback"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv.Config.Handler = idp
	cfg, err := config.Parse([]byte(`
apps:
  - name: web
    url: https://app.example.com
    oidc:
      issuer: `+idpSrv.URL+`
      clientID: web
      clientSecret: s3cret
      responseMode: form_post
`), config.Source{})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, cfg)

	w := serve(s, httptest.NewRequest("GET", "https://app.example.com/auth/login?returnTo=/after", nil))
	authURL := w.Header().Get("Location")
	if w.Code != http.StatusFound || !strings.Contains(authURL, "response_mode=form_post") {
		t.Fatalf("login: %d %q", w.Code, authURL)
	}
	var txCookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if strings.HasPrefix(c.Name, "__Host-bff-tx-") {
			txCookie = c
		}
	}
	if txCookie == nil || txCookie.SameSite != http.SameSiteNoneMode || !txCookie.Secure || !txCookie.HttpOnly {
		t.Fatalf("login cookie for form_post: %+v", txCookie)
	}

	// The user signs in at the provider, which answers with an
	// auto-submitting form aimed at the callback.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"username": {"alice"}, "password": {"alice"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(string(page))
	if action == nil {
		t.Fatalf("no login form: %s", page)
	}
	base, _ := url.Parse(resp.Request.URL.String())
	target, _ := base.Parse(html.UnescapeString(action[1]))
	resp, err = client.PostForm(target.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	post, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fields := url.Values{}
	for _, m := range regexp.MustCompile(`name="(code|state)" value="([^"]*)"`).FindAllStringSubmatch(string(post), -1) {
		fields.Set(m[1], html.UnescapeString(m[2]))
	}
	if fields.Get("code") == "" || !strings.Contains(string(post), `action="https://app.example.com/auth/callback"`) {
		t.Fatalf("provider's form_post page: %s", post)
	}

	// The browser POSTs it cross-site, sending only SameSite=None cookies.
	r := httptest.NewRequest("POST", "https://app.example.com/auth/callback", strings.NewReader(fields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", idpSrv.URL)
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.AddCookie(txCookie)
	w = serve(s, r)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/after" {
		t.Fatalf("form_post callback: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	var session *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == "__Host-bff" && c.Value != "" {
			session = c
		}
	}
	if session == nil || session.SameSite != http.SameSiteLaxMode || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "" {
		t.Fatalf("session cookie after form_post: %+v", session)
	}
}
