package server

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/rs/zerolog/hlog"

	"github.com/bff-dev/bff/internal/proxy"
	"github.com/bff-dev/bff/internal/session"
)

type ctxKey int

const reqIDKey ctxKey = 0

func contextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, reqIDKey, id)
}

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(reqIDKey).(string)
	return id
}

// errorBody is the JSON error shape for API callers.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
	LoginURL  string `json:"loginUrl,omitempty"`
}

// wantsJSON tells an API caller (fetch with the CSRF header, JSON Accept, a
// non-GET, or an API path) from a browser navigation.
func wantsJSON(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		return false
	}
	return !strings.Contains(r.Header.Get("Accept"), "text/html")
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1><p>{{.Message}}</p>
{{if .Retry}}<p><a href="{{.Retry}}">Try again</a></p>{{end}}
<p><small>Request ID: <code>{{.RequestID}}</code></small></p></main></body></html>
`))

// writeError is the one place errors become responses (SPEC §6.9): JSON
// for API callers, a plain page for navigations, always with the request
// ID, never internal details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.writeErrorRetry(w, r, status, code, msg, "")
}

func (s *Server) writeErrorRetry(w http.ResponseWriter, r *http.Request, status int, code, msg, retry string) {
	id := requestIDFrom(r.Context())
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(errorBody{Error: code, Message: msg, RequestID: id, LoginURL: retry})
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	w.WriteHeader(status)
	_ = errorPage.Execute(w, map[string]string{"Title": http.StatusText(status), "Message": msg, "RequestID": id, "Retry": retry})
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errStoreDown is reported when the session store cannot be reached.
func (s *Server) storeDown(w http.ResponseWriter, r *http.Request, err error) {
	hlog.FromRequest(r).Error().Err(err).Msg("session store unavailable")
	if s.deps.Metrics != nil {
		s.deps.Metrics.StoreErrors.Inc()
	}
	w.Header().Set("Retry-After", "1")
	s.writeError(w, r, http.StatusServiceUnavailable, "store_unavailable", "Sessions are temporarily unavailable. Try again shortly.")
}

// proxyError maps proxy and token errors to statuses, once, here.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	log := hlog.FromRequest(r)
	switch {
	case errors.Is(err, proxy.ErrNoSession), errors.Is(err, errSessionEnded):
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthenticated", Message: "Sign in first.", RequestID: requestIDFrom(r.Context()), LoginURL: s.loginURLFor(r)})
	case errors.Is(err, proxy.ErrBadPath):
		s.writeError(w, r, http.StatusBadRequest, "bad_path", "Path not allowed.")
	case errors.Is(err, proxy.ErrMethod):
		s.writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed for this API.")
	case errors.Is(err, session.ErrUnavailable):
		s.storeDown(w, r, err)
	case errors.Is(err, errRefreshFailed):
		log.Warn().Err(err).Msg("token refresh failed; session kept")
		w.Header().Set("Retry-After", "2")
		s.writeError(w, r, http.StatusServiceUnavailable, "refresh_unavailable", "The identity provider is unavailable. Try again shortly.")
	case bodyError(r) != nil && !errors.Is(err, proxy.ErrBodyTooLarge):
		// The client's body failed (too slow, cut off): not the upstream's fault.
		log.Debug().Err(bodyError(r)).Msg("request body failed")
		s.writeError(w, r, http.StatusRequestTimeout, "body_timeout", "The request body was not received in time.")
	case errors.Is(err, proxy.ErrBodyTooLarge):
		s.writeError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "Request body too large.")
	case errors.Is(err, proxy.ErrClientGone):
		log.Debug().Err(err).Msg("client went away")
		w.WriteHeader(499)
	case errors.Is(err, proxy.ErrTimeout):
		s.countUpstreamError()
		log.Warn().Err(err).Msg("upstream timeout")
		s.writeError(w, r, http.StatusGatewayTimeout, "upstream_timeout", "The API did not answer in time.")
	default:
		s.countUpstreamError()
		log.Warn().Err(err).Msg("upstream error")
		s.writeError(w, r, http.StatusBadGateway, "upstream_unavailable", "The API is unavailable.")
	}
}

func (s *Server) countUpstreamError() {
	if s.deps.Metrics != nil {
		s.deps.Metrics.UpstreamErrors.Inc()
	}
}

func (s *Server) loginURLFor(r *http.Request) string {
	if a := s.match(r); a != nil {
		return a.path("/auth/login")
	}
	return "/auth/login"
}

// redirect sends the browser to target exactly as given (http.Redirect
// would clean the path, fragment included, and echo the URL in a body).
// Targets are built or validated by the BFF (safeReturnTo, provider URLs).
func redirect(w http.ResponseWriter, target string, code int) {
	w.Header().Set("Location", target)
	w.WriteHeader(code)
}
