// Package devstack starts everything `bff dev` runs on one machine: the
// embedded OpenID Provider, the demo API and the BFF serving the example
// SPA, each on its own loopback listener. The end-to-end and browser tests
// start the same stack on random ports.
package devstack

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/demoapi"
	"github.com/bff-dev/bff/internal/devidp"
	"github.com/bff-dev/bff/internal/server"
	"github.com/bff-dev/bff/internal/session"
	examplespa "github.com/bff-dev/bff/web/example-spa"
)

// AppName is the example app's name in the dev configuration.
const AppName = "example"

// ClientID is the BFF's client ID at the embedded provider.
const ClientID = "bff-example"

// Options configure a Stack. Addresses default to 127.0.0.1:0 (tests);
// `bff dev` passes fixed ports.
type Options struct {
	BFFAddr, IdPAddr, APIAddr string
	Logger                    zerolog.Logger
	// Now is the BFF's clock (tests move it to expire access tokens).
	Now func() time.Time
	// Backend and CookieStore override the memory store (Redis tests).
	Backend     session.Backend
	CookieStore scs.Store
	// Keys override the per-start random encryption key.
	Keys *session.Keyring
	// ExtraYAML is appended to the app's YAML (indented under the app).
	ExtraYAML string
	// AccessTokenLifetime at the provider; default 5m.
	AccessTokenLifetime time.Duration
	// WrapIdP wraps the provider's handler (tests record what it issues).
	WrapIdP func(http.Handler) http.Handler
}

// Stack is a running dev environment.
type Stack struct {
	BFFURL, IssuerURL, APIURL string
	IdP                       *devidp.Provider
	BFF                       *server.Server
	Config                    *config.Config
	Users                     []devidp.User

	servers []*http.Server
	done    chan error
	memory  *session.Memory
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	return net.Listen("tcp", addr)
}

// localURL names a loopback listener as http://localhost:port, the host
// browsers treat as a secure context.
func localURL(l net.Listener) string {
	return fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
}

// Start starts the stack; it serves until ctx ends or Close is called.
func Start(ctx context.Context, o Options) (*Stack, error) {
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}
	for _, addr := range []string{o.IdPAddr, o.APIAddr, o.BFFAddr} {
		l, err := listen(addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	idpL, apiL, bffL := ls[0], ls[1], ls[2]
	st := &Stack{IssuerURL: localURL(idpL), APIURL: localURL(apiL), BFFURL: localURL(bffL), done: make(chan error, 3)}

	secret := randomSecret()
	st.Users = devidp.DemoUsers()
	idp, err := devidp.New(devidp.Config{
		Issuer:              st.IssuerURL,
		Users:               st.Users,
		AccessTokenLifetime: o.AccessTokenLifetime,
		Clients: []devidp.Client{{
			ID:                     ClientID,
			Secret:                 secret,
			RedirectURIs:           []string{st.BFFURL + "/auth/callback"},
			PostLogoutRedirectURIs: []string{st.BFFURL + "/"},
			BackChannelLogoutURI:   st.BFFURL + "/auth/backchannel-logout",
		}},
		Logger: o.Logger.With().Str("component", "devidp").Logger(),
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("dev provider: %w", err)
	}
	st.IdP = idp

	api, err := demoapi.New(ctx, demoapi.Config{Issuer: st.IssuerURL, Audience: ClientID, Logger: o.Logger.With().Str("component", "demoapi").Logger()})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("demo api: %w", err)
	}

	yaml := fmt.Sprintf(`listen: %q
adminListen: "off"
log: {format: console, level: info}
apps:
  - name: %s
    url: %q
    cookie: {secure: false}
    oidc:
      issuer: %q
      clientID: %q
      clientSecret: %q
    apis:
      - prefix: /api/
        upstream: %q
%s`, bffL.Addr().String(), AppName, st.BFFURL, st.IssuerURL, ClientID, secret, st.APIURL+"/", o.ExtraYAML)
	cfg, err := config.Parse([]byte(yaml), config.Source{})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("dev config: %w", err)
	}
	st.Config = cfg

	deps := server.Deps{Logger: o.Logger, Now: o.Now, Keys: o.Keys, SPA: map[string]fs.FS{AppName: examplespa.FS()}}
	if o.Backend != nil {
		deps.Backend, deps.CookieStore = o.Backend, o.CookieStore
	} else {
		st.memory = session.NewMemory(o.Now)
		deps.Backend, deps.CookieStore = st.memory, st.memory.CookieStore()
		go sweep(ctx, st.memory)
	}
	if deps.Keys == nil {
		deps.Keys, _ = session.NewKeyring([][]byte{session.RandomKey()})
	}
	bff, err := server.New(cfg, deps)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("bff: %w", err)
	}
	st.BFF = bff

	var idpHandler http.Handler = idp
	if o.WrapIdP != nil {
		idpHandler = o.WrapIdP(idp)
	}
	for i, h := range []http.Handler{idpHandler, api, bff} {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: cfg.Limits.MaxHeaderBytes}
		st.servers = append(st.servers, srv)
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				st.done <- err
			}
		}(ls[i])
	}
	go func() {
		<-ctx.Done()
		st.Close()
	}()
	return st, nil
}

// Close stops every server at once.
func (st *Stack) Close() {
	for _, s := range st.servers {
		_ = s.Close()
	}
}

// Shutdown drains in-flight requests, bounded by ctx.
func (st *Stack) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(st.servers) - 1; i >= 0; i-- {
		errs = append(errs, st.servers[i].Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Err reports the first server failure.
func (st *Stack) Err() <-chan error { return st.done }

// sweep drops expired in-memory entries every minute until ctx ends.
func sweep(ctx context.Context, m *session.Memory) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

func randomSecret() string {
	return base64.RawURLEncoding.EncodeToString(session.RandomKey())
}
