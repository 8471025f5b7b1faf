package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog/hlog"

	"github.com/bff-dev/bff/internal/session"
)

// AdminSession is one session as the admin API shows it: no token, no
// claims beyond the subject.
type AdminSession struct {
	// ID names the session for revocation; it is the record ID, not the
	// cookie, and only ever shown on the admin listener.
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Subject   string    `json:"sub"`
	SID       string    `json:"sid,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	LastSeen  time.Time `json:"lastSeen"`
}

// AdminHandler serves the admin session API, for the admin listener only:
//
//	GET    /admin/sessions?app=NAME&sub=SUB   list a user's sessions
//	DELETE /admin/sessions?app=NAME&sub=SUB   end all of them
//	DELETE /admin/sessions/{id}?app=NAME      end one
//
// Ending a session revokes its refresh token at the provider. With a
// non-empty token every call needs "Authorization: Bearer <token>".
func (s *Server) AdminHandler(token string) http.Handler {
	r := chi.NewRouter()
	r.Use(hlog.NewHandler(s.log))
	r.Use(s.requestID)
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			// Browsers are not admin clients: a request with an Origin is a
			// web page's (CSRF), and a Host that is a name, not an address,
			// may be DNS rebinding onto the loopback listener.
			if r.Header.Get("Origin") != "" || (token == "" && !addressHost(r.Host)) {
				writeJSON(w, http.StatusForbidden, errorBody{Error: "forbidden", Message: "Admin calls come from tools, by IP address.", RequestID: requestIDFrom(r.Context())})
				return
			}
			if token != "" {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
					w.Header().Set("WWW-Authenticate", "Bearer")
					writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized", Message: "Admin token required.", RequestID: requestIDFrom(r.Context())})
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	r.Get("/admin/sessions", s.adminList)
	r.Delete("/admin/sessions", s.adminRevokeSubject)
	r.Delete("/admin/sessions/{id}", s.adminRevokeOne)
	return r
}

func (s *Server) adminApp(w http.ResponseWriter, r *http.Request) *app {
	name := r.URL.Query().Get("app")
	if name == "" && len(s.apps) == 1 {
		return s.apps[0]
	}
	for _, a := range s.apps {
		if a.cfg.Name == name {
			return a
		}
	}
	msg := fmt.Sprintf("No app named %q.", name)
	if name == "" {
		msg = "Several apps are configured: name one (app=…)."
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: "unknown_app", Message: msg, RequestID: requestIDFrom(r.Context())})
	return nil
}

// subjectSessions resolves ?app= and ?sub= and lists that user's sessions;
// on failure it has written the response and returns ok=false.
func (s *Server) subjectSessions(w http.ResponseWriter, r *http.Request) (*app, []*session.Record, bool) {
	a := s.adminApp(w, r)
	if a == nil {
		return nil, nil, false
	}
	sub := r.URL.Query().Get("sub")
	if sub == "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "sub_required", Message: "Name the user with ?sub=.", RequestID: requestIDFrom(r.Context())})
		return nil, nil, false
	}
	recs, err := a.sessions.ListBySubject(r.Context(), sub)
	if err != nil {
		s.storeDown(w, r, err)
		return nil, nil, false
	}
	return a, recs, true
}

func (s *Server) adminList(w http.ResponseWriter, r *http.Request) {
	a, recs, ok := s.subjectSessions(w, r)
	if !ok {
		return
	}
	out := make([]AdminSession, 0, len(recs))
	for _, rec := range recs {
		out = append(out, AdminSession{ID: rec.ID, App: a.cfg.Name, Subject: rec.Subject, SID: rec.SID, CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt, LastSeen: rec.Seen})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) adminRevokeSubject(w http.ResponseWriter, r *http.Request) {
	a, recs, ok := s.subjectSessions(w, r)
	if !ok {
		return
	}
	n := 0
	for _, rec := range recs {
		if a.revoke(r, rec) == nil {
			n++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (s *Server) adminRevokeOne(w http.ResponseWriter, r *http.Request) {
	a := s.adminApp(w, r)
	if a == nil {
		return
	}
	rec, err := a.sessions.Get(r.Context(), chi.URLParam(r, "id"))
	if errors.Is(err, session.ErrNoSession) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not_found", Message: "No such session.", RequestID: requestIDFrom(r.Context())})
		return
	}
	if err != nil {
		s.storeDown(w, r, err)
		return
	}
	if err := a.revoke(r, rec); err != nil {
		s.storeDown(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": 1})
}

// revoke ends rec on every replica and revokes its refresh token.
func (a *app) revoke(r *http.Request, rec *session.Record) error {
	log := hlog.FromRequest(r)
	if err := a.sessions.Delete(r.Context(), rec.ID, rec); err != nil {
		return err
	}
	if err := a.oidc.Revoke(r.Context(), rec.RefreshToken); err != nil {
		log.Warn().Err(err).Str("session", session.HashID(rec.ID)).Msg("refresh token revocation failed")
	}
	a.s.deps.Metrics.sessionEnded("revoked")
	a.audit(log, "session_revoked", rec, a.s.clientIP(r)).Send()
	return nil
}

// addressHost reports whether a Host header names an IP address or
// localhost (not a DNS name an attacker could point at us).
func addressHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || net.ParseIP(host) != nil
}
