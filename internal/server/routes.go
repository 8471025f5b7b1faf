package server

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
	"github.com/go-chi/httprate"
	"github.com/rs/zerolog/hlog"
)

// routes is the whole public API. Middleware order, outermost first:
//
//  1. recoverer: a panic becomes a 500 through the error writer, never a stack trace;
//  2. request ID (X-Request-ID, generated, never taken from the client) and
//     the request logger; the access log has path and status, never the query
//     (it may hold an authorization code) nor cookies;
//  3. request-body limits in size and read time (tighter on /auth), on every
//     route, before matching;
//  4. app matching by host and path prefix (404 when none), then per app the
//     security headers;
//  5. per route: rate limit (/auth/login, /auth/callback, /auth/logout share
//     one per-IP budget; /auth/backchannel-logout has ten times it), CORS for the
//     configured origins (preflights end here, before any session lookup),
//     CSRF (/auth/me, /auth/logout, APIs).
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer)
	r.Use(hlog.NewHandler(s.log))
	r.Use(s.requestID)
	r.Use(s.accessLog)
	r.Use(s.limitBody)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		a := s.match(r)
		if a == nil {
			s.writeError(w, r, http.StatusNotFound, "not_found", "No application is served here.")
			return
		}
		a.router.ServeHTTP(w, r)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		if a := s.match(r); a != nil {
			a.router.ServeHTTP(w, r)
			return
		}
		s.writeError(w, r, http.StatusNotFound, "not_found", "No application is served here.")
	})
	return r
}

// routes of one app, mounted under its path prefix.
func (a *app) routes() (http.Handler, error) {
	s := a.s
	r := chi.NewRouter()
	r.Use(a.securityHeaders)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, "not_found", "Not found.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed.")
	})

	loginLimit := httprate.LimitBy(s.cfg.Limits.LoginRatePerMinute, time.Minute,
		func(r *http.Request) (string, error) { return s.clientIP(r), nil },
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, http.StatusTooManyRequests, "rate_limited", "Too many login attempts. Wait a minute and try again.")
		}))
	// Back-channel logout is called by the provider, possibly in bursts (one
	// call per session): a higher limit, still per client IP.
	backchannelLimit := httprate.LimitBy(10*s.cfg.Limits.LoginRatePerMinute, time.Minute,
		func(r *http.Request) (string, error) { return s.clientIP(r), nil },
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate_limited"})
		}))
	// Without configured origins there is no CORS at all (go-chi/cors would
	// treat an empty list as "allow every origin").
	corsMW := func(next http.Handler) http.Handler { return next }
	if len(a.cfg.CORS.AllowedOrigins) > 0 {
		corsMW = cors.Handler(cors.Options{
			AllowedOrigins:   a.cfg.CORS.AllowedOrigins,
			AllowedMethods:   []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"},
			AllowedHeaders:   []string{a.cfg.CSRFHeader, "Content-Type", "Accept", "X-Request-ID"},
			ExposedHeaders:   []string{"X-Request-ID"},
			AllowCredentials: true,
			MaxAge:           600,
		})
	}

	mount := func(fn func(r chi.Router)) {
		if a.pathPrefix == "" {
			fn(r)
		} else {
			r.Route(a.pathPrefix, fn)
		}
	}
	mount(func(r chi.Router) {
		r.Route("/auth", func(r chi.Router) {
			r.Use(noStore)
			r.With(loginLimit).Get("/login", a.login)
			r.With(loginLimit).Get("/callback", a.callback)
			r.With(loginLimit).Post("/callback", a.callback)
			r.With(corsMW, a.csrf).Get("/me", a.me)
			r.With(loginLimit, corsMW, a.csrfLogout).Post("/logout", a.logout)
			r.Get("/logout/continue", a.logoutContinue)
			r.With(backchannelLimit).Post("/backchannel-logout", a.backchannelLogout)
		})
		for i, api := range a.apiCfg {
			h := corsMW(a.csrf(a.apis[i]))
			r.Handle(api.Prefix+"*", h)
		}
		r.Handle("/*", a.spaHandler())
	})
	return r, nil
}
