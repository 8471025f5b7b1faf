package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/bff-dev/bff/internal/config"
	"github.com/bff-dev/bff/internal/server"
	"github.com/bff-dev/bff/internal/session"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", getenv("BFF_CONFIG"), "configuration file (or BFF_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "serve: --config FILE (or BFF_CONFIG) is required")
		return errUsage
	}
	cfg, err := config.Load(*path, getenv)
	if err != nil {
		return err
	}
	if files := cfg.CheckFiles(); len(files) > 0 {
		return files
	}
	log := newLogger(stdout, cfg.Log.Format, cfg.Log.Level)

	stores, err := openStores(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stores.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := server.New(cfg, server.Deps{
		Logger: log, Backend: stores.backend, CookieStore: stores.cookies, Keys: stores.keys,
		Metrics: server.NewMetrics(reg),
	})
	if err != nil {
		return err
	}

	public := &http.Server{
		Addr: cfg.Listen, Handler: srv,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: cfg.Limits.MaxHeaderBytes,
	}
	servers := []*http.Server{public}
	if cfg.AdminListen != "off" {
		servers = append(servers, &http.Server{
			Addr: cfg.AdminListen, Handler: adminHandler(srv, reg, cfg.AdminToken),
			// Nothing streams here: bound the whole request read.
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 15 * time.Second, IdleTimeout: 2 * time.Minute,
		})
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		l, err := net.Listen("tcp", s.Addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", s.Addr, err)
		}
		log.Info().Str("addr", l.Addr().String()).Msg("listening")
		go func() {
			if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down: draining in-flight requests")
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Limits.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Shutdown(sctx))
	}
	return errors.Join(errs...)
}

// adminHandler serves /healthz, /readyz, /metrics and the admin session
// API on the admin listener.
func adminHandler(srv *server.Server, reg *prometheus.Registry, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/admin/", srv.AdminHandler(token))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := srv.Ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "{\"status\":\"unavailable\",\"reason\":%q}\n", err.Error())
			return
		}
		_, _ = io.WriteString(w, `{"status":"ready"}`+"\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// stores are the session backends chosen by the configuration.
type stores struct {
	backend session.Backend
	cookies scs.Store
	keys    *session.Keyring
	close   func()
}

func openStores(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*stores, error) {
	keys := cfg.Session.Keys()
	if len(keys) == 0 {
		log.Warn().Msg("no session.encryptionKeys configured: using a random key; sessions end when the process restarts")
		keys = [][]byte{session.RandomKey()}
	}
	ring, err := session.NewKeyring(keys)
	if err != nil {
		return nil, err
	}
	if cfg.Session.Store == "memory" {
		mem := session.NewMemory(nil)
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
					mem.Sweep()
				}
			}
		}()
		return &stores{backend: mem, cookies: mem.CookieStore(), keys: ring, close: cancel}, nil
	}
	rc := cfg.Session.Redis
	pool, err := session.NewRedisPool(session.RedisOptions{
		URL: rc.URL, KeyPrefix: rc.KeyPrefix, PoolSize: rc.PoolSize,
		DialTimeout: rc.DialTimeout, ReadTimeout: rc.ReadTimeout, WriteTimeout: rc.WriteTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("session.redis: %w", err)
	}
	return &stores{
		backend: session.NewRedis(pool, rc.KeyPrefix),
		cookies: session.NewRedisCookieStore(pool, rc.KeyPrefix),
		keys:    ring,
		close:   func() { _ = pool.Close() },
	}, nil
}
