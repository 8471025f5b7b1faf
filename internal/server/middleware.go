package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog/hlog"
)

// requestID gives every request a fresh ID, returned as X-Request-ID and
// attached to its log lines. A client's X-Request-ID is not trusted.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		id := base64.RawURLEncoding.EncodeToString(b)
		w.Header().Set("X-Request-ID", id)
		l := hlog.FromRequest(r).With().Str("req_id", id).Logger()
		ctx := l.WithContext(r.Context())
		next.ServeHTTP(w, r.WithContext(contextWithRequestID(ctx, id)))
	})
}

// accessLog logs one line per request: method, path (never the query: it
// can carry an authorization code), status, size, duration.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		if s.deps.Metrics != nil {
			s.deps.Metrics.observeRequest(r, status, time.Since(start))
		}
		hlog.FromRequest(r).Info().Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", status).Int("size", ww.BytesWritten()).
			Dur("duration_ms", time.Since(start)).Str("ip", s.clientIP(r)).Msg("request")
	})
}

// recoverer turns a panic into a 500 written by the error writer.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				hlog.FromRequest(r).Error().Str("panic", fmt.Sprint(v)).Msg("handler panicked")
				s.writeError(w, r, http.StatusInternalServerError, "internal_error", "Something went wrong.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authBodyLimit and authBodyTimeout bound bodies of the BFF's own
// endpoints (forms, logout tokens): they are small and quick.
const (
	authBodyLimit   = 64 << 10
	authBodyTimeout = 10 * time.Second
)

// isWebSocketHandshake recognises an RFC 6455 §4.1 opening handshake: a
// GET with Connection: upgrade, Upgrade: websocket, a Sec-WebSocket-Key and
// no body. Only such requests skip the body limits and the CSRF header
// (browsers cannot add headers to them; their Origin is checked instead).
func isWebSocketHandshake(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		r.Header.Get("Sec-WebSocket-Key") != "" &&
		r.ContentLength == 0 && len(r.TransferEncoding) == 0
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

type bodyStateKey struct{}

// bodyState remembers how reading the request body ended, so that a
// client's slow or oversized body is not blamed on an upstream.
type bodyState struct{ err error }

func bodyError(r *http.Request) error {
	if st, ok := r.Context().Value(bodyStateKey{}).(*bodyState); ok {
		return st.err
	}
	return nil
}

// limitBody bounds request bodies (SPEC §6.7) in size and in time, on every
// route of the listener, before app matching, so a client trickling a body
// cannot hold a connection open anywhere. The read deadline is lifted once
// the body has been read, so a long answer (a stream) is not cut. /auth
// endpoints get tighter limits. Only a genuine WebSocket handshake (which
// has no body) is left alone.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, timeout := s.cfg.Limits.MaxBodyBytes, s.cfg.Limits.BodyTimeout
		if a := s.match(r); a == nil || strings.HasPrefix(r.URL.Path, a.path("/auth/")) {
			limit, timeout = authBodyLimit, min(authBodyTimeout, timeout)
		}
		if r.ContentLength > limit {
			s.writeError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large.")
			return
		}
		if r.Body != nil && r.Body != http.NoBody && !isWebSocketHandshake(r) {
			st := &bodyState{}
			r = r.WithContext(context.WithValue(r.Context(), bodyStateKey{}, st))
			rc := http.NewResponseController(w)
			// Not every ResponseWriter supports deadlines (tests); then the
			// server's own timeouts are all there is.
			if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, st: st}
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	st   *bodyState
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF && !b.done:
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil && err != io.EOF && b.st.err == nil:
		b.st.err = err
	}
	return n, err
}

// securityHeaders sets headers every BFF response carries (OWASP HTTP
// Headers Cheat Sheet). Pages get the app's CSP (spa.go).
func (a *app) securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range a.securityHeaderValues() {
			h.Set(k, v)
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaderValues are the headers securityHeaders sets.
func (a *app) securityHeaderValues() map[string]string {
	h := map[string]string{
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "no-referrer",
		"X-Frame-Options":            "DENY",
		"Cross-Origin-Opener-Policy": "same-origin",
	}
	if strings.HasPrefix(a.origin, "https:") {
		h["Strict-Transport-Security"] = "max-age=63072000"
	}
	return h
}

// noStore keeps /auth responses out of every cache.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// crossSite reports a request that a browser marked as coming from another
// site, or whose Origin is neither the app's nor a configured CORS origin
// (OWASP CSRF Cheat Sheet: Fetch Metadata and Origin verification).
func (a *app) crossSite(r *http.Request) bool {
	site := strings.ToLower(r.Header.Get("Sec-Fetch-Site"))
	origin := r.Header.Get("Origin")
	allowed := origin != "" && slices.Contains(a.cfg.CORS.AllowedOrigins, strings.ToLower(origin))
	// A browser that says cross-site (or same-site: a sibling subdomain) is
	// believed whatever the Origin says, unless that origin is configured.
	if (site == "cross-site" || site == "same-site") && !allowed {
		return true
	}
	if origin == "" {
		return false // same-origin GETs carry no Origin
	}
	return !strings.EqualFold(origin, a.origin) && !allowed // "null" included
}

// csrf requires the CSRF header with value "1" (a custom header forces a
// CORS preflight cross-origin) and refuses cross-site requests. WebSocket
// upgrades cannot carry custom headers: they are checked against the app's
// allowed origins instead (SPEC §6.2).
func (a *app) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.crossSite(r) {
			a.s.writeError(w, r, http.StatusForbidden, "cross_site", "Cross-site request refused.")
			return
		}
		if isWebSocketHandshake(r) {
			if r.Header.Get("Origin") == "" {
				a.s.writeError(w, r, http.StatusForbidden, "origin_required", "WebSocket upgrade without Origin refused.")
				return
			}
		} else if r.Header.Get(a.cfg.CSRFHeader) != "1" {
			a.s.writeError(w, r, http.StatusForbidden, "csrf_header_missing",
				fmt.Sprintf("Send the header %q with value 1.", a.cfg.CSRFHeader))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// csrfLogout is csrf for /auth/logout, which also accepts a plain HTML form
// POST from the app's own pages: the browser then sends an Origin (or
// Sec-Fetch-Site: same-origin) that must be the app's own. A link or a
// cross-site form can never log the user out.
func (a *app) csrfLogout(next http.Handler) http.Handler {
	withHeader := a.csrf(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(a.cfg.CSRFHeader) == "" && isForm(r) {
			origin := r.Header.Get("Origin")
			sameOrigin := strings.EqualFold(origin, a.origin) ||
				(origin == "" && r.Header.Get("Sec-Fetch-Site") == "same-origin")
			if !sameOrigin {
				a.s.writeError(w, r, http.StatusForbidden, "cross_site", "Cross-site logout refused.")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		withHeader.ServeHTTP(w, r)
	})
}

func isForm(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded" || ct == "multipart/form-data"
}
