package server

import (
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/sync/singleflight"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/oidc"
	"github.com/bff-dev/bff/internal/proxy"
	"github.com/bff-dev/bff/internal/session"
)

// app is one configured application with its own OIDC client, session
// cookie, return-to rules and APIs.
type app struct {
	s          *Server
	cfg        *config.App
	origin     string // scheme://host of the app URL
	pathPrefix string // app URL path without trailing slash ("" at the root)
	hosts      map[string]bool
	sessions   *session.Manager
	oidc       *oidc.Client
	apis       []*proxy.Handler
	apiCfg     []config.API
	flight     singleflight.Group // one refresh per session in this process
	unsaved    unsavedTokens      // refreshed tokens the store could not take yet
	router     http.Handler
}

func newApp(s *Server, c *config.App) (*app, error) {
	u := c.ParsedURL()
	a := &app{
		s:          s,
		cfg:        c,
		origin:     strings.ToLower(u.Scheme + "://" + u.Host),
		pathPrefix: strings.TrimSuffix(u.Path, "/"),
		hosts:      map[string]bool{strings.ToLower(u.Host): true},
	}
	for _, h := range c.Hosts {
		a.hosts[strings.ToLower(h)] = true
	}
	sameSite := http.SameSiteLaxMode
	if strings.EqualFold(c.Cookie.SameSite, "strict") {
		sameSite = http.SameSiteStrictMode
	}
	sc := s.cfg.Session
	a.sessions = session.NewManager(session.Settings{
		App:          c.Name,
		CookieName:   c.Cookie.Name,
		CookieDomain: c.Cookie.Domain,
		CookieSecure: c.Cookie.CookieSecure(),
		SameSite:     sameSite,
		// form_post callbacks are cross-site POSTs.
		CrossSiteCallback: c.OIDC.ResponseMode == "form_post",
		IdleTimeout:       sc.IdleTimeout,
		AbsoluteLifetime:  sc.AbsoluteLifetime,
		LoginTimeout:      sc.LoginTimeout,
		MaxPendingLogins:  sc.MaxPendingLogins,
		Now:               s.deps.Now,
	}, s.deps.CookieStore, s.deps.Backend, s.deps.Keys)
	a.oidc = oidc.New(oidc.Config{
		Issuer:                c.OIDC.Issuer,
		ClientID:              c.OIDC.ClientID,
		ClientSecret:          c.OIDC.ClientSecret,
		AuthMethod:            c.OIDC.AuthMethod,
		Scopes:                c.OIDC.Scopes,
		RedirectURL:           c.OIDC.RedirectURL,
		PostLogoutRedirectURL: c.OIDC.PostLogoutRedirectURL,
		ClockSkew:             c.OIDC.ClockSkew,
		ResponseMode:          c.OIDC.ResponseMode,
		DefaultTokenLifetime:  c.OIDC.DefaultTokenLifetime,
		HTTPClient:            s.deps.ProviderClient,
		Now:                   s.deps.Now,
	})
	for _, api := range c.APIs {
		up, err := url.Parse(api.Upstream)
		if err != nil {
			return nil, err
		}
		a.apiCfg = append(a.apiCfg, api)
		a.apis = append(a.apis, proxy.New(proxy.Config{
			Prefix:             a.pathPrefix + api.Prefix,
			Upstream:           up,
			Methods:            api.Methods,
			RequireToken:       api.RequiresToken(),
			Tokens:             a,
			IsBFFCookie:        s.isBFFCookie,
			StripHeaders:       []string{c.CSRFHeader},
			OwnResponseHeaders: ownHeaders(),
			PublicHost:         u.Host,
			PublicProto:        u.Scheme,
			TrustedProxy:       s.cfg.TrustsProxy,
			Transport:          s.deps.UpstreamTransport,
			OnError:            s.proxyError,
		}))
	}
	router, err := a.routes()
	if err != nil {
		return nil, err
	}
	a.router = router
	return a, nil
}

// isBFFCookie reports whether a cookie name is a session or login cookie of
// any app of this BFF: never forwarded upstream (another app's upstream
// must not see this app's session either), never settable by an upstream.
func (s *Server) isBFFCookie(name string) bool {
	for _, a := range s.apps {
		if a.sessions.OwnsCookie(name) {
			return true
		}
	}
	return false
}

// path returns the path of p under the app (relative to the host).
func (a *app) path(p string) string { return a.pathPrefix + p }

// ownHeaders names the headers securityHeaders sets on every response.
func ownHeaders() []string {
	return []string{"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Cross-Origin-Opener-Policy", "Strict-Transport-Security", "X-Request-ID"}
}
