// Package server wires the BFF together: it matches each request to an app,
// runs the middleware chain (documented in routes.go), serves the /auth
// endpoints, hands API prefixes to the proxy with a fresh access token, and
// writes every error through one writer (errors.go).
package server

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/session"
)

// Deps are the Server's dependencies, built by the caller (cmd/bff or a test).
type Deps struct {
	Logger zerolog.Logger
	// Backend keeps session records, login transactions and locks.
	Backend session.Backend
	// CookieStore is the scs store mapping cookie tokens to record IDs.
	CookieStore scs.Store
	// Keys encrypt records at rest.
	Keys *session.Keyring
	// Now is the clock; default time.Now. Tests move it to expire tokens.
	Now func() time.Time
	// ProviderClient is used for every call to an OpenID Provider; default
	// a client with Limits.ProviderTimeout.
	ProviderClient *http.Client
	// UpstreamTransport is used for API and SPA upstreams; default a tuned
	// http.Transport with Limits.UpstreamTimeout for response headers.
	UpstreamTransport http.RoundTripper
	// SPA overrides an app's static files by app name (bff dev serves the
	// embedded example SPA).
	SPA map[string]fs.FS
	// Metrics records counters; nil disables metrics.
	Metrics *Metrics
}

// Server is the BFF's HTTP side.
type Server struct {
	cfg     *config.Config
	deps    Deps
	log     zerolog.Logger
	apps    []*app
	handler http.Handler
}

// New builds a Server from a validated configuration.
func New(cfg *config.Config, deps Deps) (*Server, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Backend == nil || deps.CookieStore == nil || deps.Keys == nil {
		return nil, fmt.Errorf("server: Backend, CookieStore and Keys are required")
	}
	if deps.ProviderClient == nil {
		deps.ProviderClient = &http.Client{
			Timeout: cfg.Limits.ProviderTimeout,
			// Never follow a provider's redirect with our credentials.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if deps.UpstreamTransport == nil {
		deps.UpstreamTransport = newTransport(cfg.Limits.UpstreamTimeout)
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger}
	for i := range cfg.Apps {
		a, err := newApp(s, &cfg.Apps[i])
		if err != nil {
			return nil, fmt.Errorf("app %q: %w", cfg.Apps[i].Name, err)
		}
		s.apps = append(s.apps, a)
	}
	// Longest path prefix first, so /shop/admin wins over /shop.
	sort.SliceStable(s.apps, func(i, j int) bool { return len(s.apps[i].pathPrefix) > len(s.apps[j].pathPrefix) })
	s.handler = s.routes()
	return s, nil
}

func newTransport(responseTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // upstreams are addressed directly
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// match picks the app for r: host match (app URL host or Hosts), then the
// longest path prefix. With a single app every host matches it.
func (s *Server) match(r *http.Request) *app {
	host := strings.ToLower(r.Host)
	for _, a := range s.apps {
		if (len(s.apps) == 1 || a.hosts[host]) && pathUnder(r.URL.Path, a.pathPrefix) {
			return a
		}
	}
	return nil
}

func pathUnder(p, prefix string) bool {
	return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
}

// Ready checks the store and each provider's discovery (for /readyz).
func (s *Server) Ready(ctx context.Context) error {
	if err := s.deps.Backend.Ping(ctx); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	for _, a := range s.apps {
		if err := a.oidc.Ready(ctx); err != nil {
			return fmt.Errorf("app %s: %w", a.cfg.Name, err)
		}
	}
	return nil
}

// clientIP is the peer address, or the first untrusted hop of
// X-Forwarded-For when the peer is a trusted proxy.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if !s.cfg.TrustsProxy(peer) {
		return peer.Unmap().String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.cfg.TrustsProxy(a) {
			return a.Unmap().String()
		}
		peer = a
	}
	return peer.Unmap().String()
}
