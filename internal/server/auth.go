package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/bff-dev/bff/internal/oidc"
	"github.com/bff-dev/bff/internal/session"
)

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var (
	maxAgeRE    = regexp.MustCompile(`^[0-9]{1,9}$`)
	errorCodeRE = regexp.MustCompile(`^[a-z_]{1,64}$`)
	prompts     = []string{"none", "login", "consent", "select_account", "create"}
)

// login starts the authorization-code flow: fresh state, nonce and PKCE
// verifier kept server-side, bound to this browser by a per-transaction
// cookie, then a 302 to the provider.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := oidc.AuthRequest{State: randomString(), Nonce: randomString(), Verifier: randomString()}
	if p := q.Get("prompt"); slices.Contains(prompts, p) {
		req.Prompt = p
	}
	if v := q.Get("max_age"); maxAgeRE.MatchString(v) {
		req.MaxAge = v
	}
	if v := q.Get("acr_values"); len(v) <= 256 {
		req.ACRValues = v
	}
	if v := q.Get("login_hint"); len(v) <= 256 {
		req.LoginHint = v
	}
	authURL, err := a.oidc.AuthURL(r.Context(), req)
	if err != nil {
		hlog.FromRequest(r).Error().Err(err).Msg("cannot build authorization URL")
		a.s.writeErrorRetry(w, r, http.StatusBadGateway, "provider_unavailable", "The identity provider is unavailable. Try again shortly.", a.path("/auth/login"))
		return
	}
	tx := &session.LoginTx{State: req.State, Nonce: req.Nonce, Verifier: req.Verifier, ReturnTo: a.safeReturnTo(q.Get("returnTo")), MaxAge: req.MaxAge}
	if err := a.sessions.BeginLogin(w, r, tx); err != nil {
		a.s.storeDown(w, r, err)
		return
	}
	redirect(w, authURL, http.StatusFound)
}

// callback completes the flow. The state is taken once; a replayed or
// unknown state never redeems a code: a browser with a live session goes to
// the app, one without restarts login. The session ID is always new.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	log := hlog.FromRequest(r)
	ip := a.s.clientIP(r)
	if err := r.ParseForm(); err != nil {
		a.s.writeError(w, r, http.StatusBadRequest, "bad_request", "The sign-in response could not be read.")
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		params = r.PostForm
	}
	state, code, provErr := params.Get("state"), params.Get("code"), params.Get("error")
	retry := a.path("/auth/login")

	tx, err := a.sessions.FinishLogin(w, r, state)
	switch {
	case errors.Is(err, session.ErrLoginUnknown):
		if rec, lerr := a.sessions.Load(r); lerr == nil && rec != nil {
			redirect(w, a.path("/"), http.StatusSeeOther)
			return
		}
		if provErr != "" || code == "" {
			a.s.writeErrorRetry(w, r, http.StatusBadRequest, "login_failed", "This sign-in attempt is no longer valid.", retry)
			return
		}
		redirect(w, retry, http.StatusSeeOther)
		return
	case errors.Is(err, session.ErrLoginExpired):
		if tx != nil {
			retry += "?returnTo=" + url.QueryEscape(tx.ReturnTo)
		}
		a.s.writeErrorRetry(w, r, http.StatusBadRequest, "login_expired", "Sign-in took too long.", retry)
		return
	case errors.Is(err, session.ErrLoginForeign):
		a.audit(log, "login_failure", nil, ip).Str("reason", "state from another browser").Send()
		a.s.writeErrorRetry(w, r, http.StatusBadRequest, "login_failed", "This sign-in attempt was started in another browser.", retry)
		return
	case err != nil:
		a.s.storeDown(w, r, err)
		return
	}
	retry += "?returnTo=" + url.QueryEscape(tx.ReturnTo)
	if provErr != "" || code == "" {
		reason := "no authorization code"
		if errorCodeRE.MatchString(provErr) {
			reason = provErr
		} else if provErr != "" {
			reason = "provider error"
		}
		a.audit(log, "login_failure", nil, ip).Str("reason", reason).Send()
		msg := "Sign-in did not complete (" + reason + ")."
		status := http.StatusBadRequest
		if provErr == "access_denied" {
			msg, status = "Sign-in was cancelled or access was denied.", http.StatusForbidden
		}
		a.s.writeErrorRetry(w, r, status, "login_failed", msg, retry)
		return
	}
	toks, err := a.oidc.Exchange(r.Context(), code, tx.Verifier, tx.Nonce, tx.MaxAge)
	if err != nil {
		a.audit(log, "login_failure", nil, ip).Err(err).Send()
		if errors.Is(err, oidc.ErrProvider) {
			a.s.writeErrorRetry(w, r, http.StatusBadGateway, "provider_unavailable", "The identity provider is unavailable. Try again shortly.", retry)
			return
		}
		a.s.writeErrorRetry(w, r, http.StatusBadRequest, "login_failed", "Sign-in could not be verified.", retry)
		return
	}
	rec := &session.Record{
		Subject: toks.Subject, SID: toks.SID, Nonce: tx.Nonce, Claims: session.NewClaims(a.pickClaims(toks.Claims, nil)),
		IDToken: toks.IDToken, AccessToken: toks.AccessToken, RefreshToken: toks.RefreshToken,
		TokenType: toks.TokenType, Expiry: toks.Expiry,
	}
	if err := a.sessions.Start(w, r, rec); err != nil {
		a.s.storeDown(w, r, err)
		return
	}
	a.s.deps.Metrics.sessionStarted()
	a.audit(log, "login_success", rec, ip).Send()
	redirect(w, tx.ReturnTo, http.StatusSeeOther)
}

// meResponse is the /auth/me body.
type meResponse struct {
	Authenticated bool           `json:"authenticated"`
	User          session.Claims `json:"user,omitempty"`
	Session       *meSession     `json:"session,omitempty"`
	LogoutURL     string         `json:"logoutUrl,omitempty"`
	LoginURL      string         `json:"loginUrl,omitempty"`
}

type meSession struct {
	ExpiresIn     int64 `json:"expiresIn"`
	IdleExpiresIn int64 `json:"idleExpiresIn"`
}

// me tells the SPA (or an SSR server forwarding the cookie) who is signed
// in. It never returns a token. ?poll=1 does not extend the idle timeout.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	rec, err := a.sessions.Load(r)
	if errors.Is(err, session.ErrNoSession) {
		if err != session.ErrNoSession {
			hlog.FromRequest(r).Warn().Err(err).Msg("unreadable session treated as none")
		}
		writeJSON(w, http.StatusUnauthorized, meResponse{LoginURL: a.path("/auth/login")})
		return
	}
	if err != nil {
		a.s.storeDown(w, r, err)
		return
	}
	if r.URL.Query().Get("poll") == "" {
		if err := a.sessions.Touch(r.Context(), rec); err != nil {
			a.s.storeDown(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, meResponse{
		Authenticated: true,
		User:          rec.Claims,
		Session: &meSession{
			ExpiresIn:     int64(a.sessions.ExpiresIn(rec) / time.Second),
			IdleExpiresIn: int64(a.sessions.IdleExpiresIn(rec) / time.Second),
		},
		LogoutURL: a.path("/auth/logout"),
	})
}

// logoutResponse is the /auth/logout body for fetch callers.
type logoutResponse struct {
	// EndSessionURL is where to navigate to end the provider's session:
	// the BFF's /auth/logout/continue, which redirects to the provider.
	// Empty when the provider has no end-session endpoint.
	EndSessionURL string `json:"endSessionUrl"`
	// RedirectURL is where to go when EndSessionURL is empty.
	RedirectURL string `json:"redirectUrl"`
}

// logout ends the session here (record and cookie), revokes the refresh
// token, and hands the browser the provider's end-session URL. It works
// without a session too, so a stale tab can still log out at the provider.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	log := hlog.FromRequest(r)
	rec, err := a.sessions.End(w, r)
	if err != nil {
		a.s.storeDown(w, r, err)
		return
	}
	idToken := ""
	if rec != nil {
		a.s.deps.Metrics.sessionEnded("logout")
		a.audit(log, "logout", rec, a.s.clientIP(r)).Send()
		if err := a.oidc.Revoke(r.Context(), rec.RefreshToken); err != nil {
			log.Warn().Err(err).Str("session", session.HashID(rec.ID)).Msg("refresh token revocation failed")
		}
		idToken = rec.IDToken
	}
	// Where the browser goes next. With an ID token to send as
	// id_token_hint it stays server-side and the browser goes through
	// /auth/logout/continue, so script never sees it (with ZITADEL its
	// audience often matches an API's). Otherwise (no session, or hints
	// off) straight to the provider with client_id, no store entry.
	target := a.path("/")
	ep, err := a.oidc.EndSessionURL(r.Context(), "", randomString(), false)
	switch {
	case err != nil || ep == "":
		if err != nil {
			log.Warn().Err(err).Msg("no end-session URL")
		}
	case idToken != "" && a.cfg.OIDC.SendIDTokenHint():
		if err := a.sessions.StashLogout(w, r, idToken); err != nil {
			a.s.storeDown(w, r, err)
			return
		}
		target = a.path("/auth/logout/continue")
	default:
		target = ep
	}
	if isForm(r) {
		redirect(w, target, http.StatusSeeOther)
		return
	}
	endURL := ""
	if target != a.path("/") {
		endURL = target
	}
	writeJSON(w, http.StatusOK, logoutResponse{EndSessionURL: endURL, RedirectURL: a.path("/")})
}

// logoutContinue sends the browser to the provider's end-session endpoint
// (RP-Initiated Logout 1.0) after /auth/logout, with id_token_hint when the
// app allows it (SPEC §6.3's one exception: the token is in the redirect's
// Location, never in anything script can read), post_logout_redirect_uri
// and state. Only a browser that just logged out here (it has the logout
// cookie) is sent on; any other request goes to the app root, so a link
// cannot log a user out at the provider.
func (a *app) logoutContinue(w http.ResponseWriter, r *http.Request) {
	// Only the app's own navigation continues a logout, never a link on
	// another site.
	if site := strings.ToLower(r.Header.Get("Sec-Fetch-Site")); site == "cross-site" || site == "same-site" {
		redirect(w, a.path("/"), http.StatusSeeOther)
		return
	}
	idToken, err := a.sessions.TakeLogout(w, r)
	if errors.Is(err, session.ErrNoLogout) {
		redirect(w, a.path("/"), http.StatusSeeOther)
		return
	}
	if err != nil {
		a.s.storeDown(w, r, err)
		return
	}
	endURL, err := a.oidc.EndSessionURL(r.Context(), idToken, randomString(), a.cfg.OIDC.SendIDTokenHint())
	if err != nil || endURL == "" {
		hlog.FromRequest(r).Warn().Err(err).Msg("no end-session URL")
		redirect(w, a.path("/"), http.StatusSeeOther)
		return
	}
	redirect(w, endURL, http.StatusSeeOther)
}

// backchannelLogout implements OIDC Back-Channel Logout 1.0: the provider
// POSTs a signed logout token; every session of that provider session (sid)
// or user (sub) ends, on every replica (the records live in the store).
func (a *app) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	log := hlog.FromRequest(r)
	w.Header().Set("Cache-Control", "no-store")
	fail := func(status int, desc string) {
		writeJSON(w, status, map[string]string{"error": "invalid_request", "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "body is not a form")
		return
	}
	lt, err := a.oidc.VerifyLogoutToken(r.Context(), r.PostForm.Get("logout_token"))
	if err != nil {
		log.Warn().Err(err).Msg("back-channel logout token rejected")
		if errors.Is(err, oidc.ErrProvider) {
			fail(http.StatusServiceUnavailable, "provider keys unavailable")
			return
		}
		fail(http.StatusBadRequest, "invalid logout_token")
		return
	}
	sum := sha256.Sum256([]byte(a.cfg.OIDC.Issuer + "\x00" + lt.JTI))
	ttl := time.Until(lt.Expiry) + a.cfg.OIDC.ClockSkew + time.Minute
	if err := a.sessions.FirstUse(r.Context(), "jti:"+base64.RawURLEncoding.EncodeToString(sum[:]), ttl); err != nil {
		if errors.Is(err, session.ErrExists) {
			fail(http.StatusBadRequest, "logout_token replayed")
			return
		}
		a.s.storeDown(w, r, err)
		return
	}
	n, err := a.sessions.EndBy(r.Context(), lt.SID, lt.Subject)
	if err != nil {
		a.s.storeDown(w, r, err)
		return
	}
	a.s.deps.Metrics.sessionEndedN("backchannel", n)
	a.audit(log, "backchannel_logout", nil, a.s.clientIP(r)).Str("sub", lt.Subject).Bool("by_sid", lt.SID != "").Int("sessions", n).Send()
	w.WriteHeader(http.StatusOK)
}

// audit starts an audit event: app, sub, hashed session ID, client IP;
// never a token.
func (a *app) audit(log *zerolog.Logger, event string, rec *session.Record, ip string) *zerolog.Event {
	e := log.Info().Str("audit", event).Str("app", a.cfg.Name).Str("ip", ip)
	if rec != nil {
		e = e.Str("sub", rec.Subject).Str("session", session.HashID(rec.ID))
	}
	return e
}

// ZITADEL's role claims (research/libraries.md §4.1): maps of role key to
// {orgId: orgDomain}; the keys are the role names.
const (
	zitadelRolesClaim = "urn:zitadel:iam:org:project:roles"
	zitadelPrefix     = "urn:zitadel:iam:org:project:"
)

// pickClaims keeps the configured claims for /auth/me and adds "roles",
// the sorted role names from ZITADEL's role claims or a plain "roles" array.
// Claims missing from claims are kept from prev (a refreshed ID token may
// carry fewer claims than login's ID token plus userinfo); a roles claim
// that is present, even empty, replaces the previous roles (revoked roles
// disappear at the next refresh).
func (a *app) pickClaims(claims, prev map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range prev {
		out[k] = v
	}
	for _, k := range a.cfg.Me.Claims {
		if v, ok := claims[k]; ok {
			out[k] = v
		}
	}
	roles := map[string]bool{}
	present := false // a roles claim, even empty, replaces the old roles
	for k, v := range claims {
		if k == zitadelRolesClaim || strings.HasPrefix(k, zitadelPrefix) && strings.HasSuffix(k, ":roles") {
			present = true
			if m, ok := v.(map[string]any); ok {
				for role := range m {
					roles[role] = true
				}
			}
		}
	}
	if list, ok := claims["roles"].([]any); ok {
		present = true
		for _, v := range list {
			if s, ok := v.(string); ok {
				roles[s] = true
			}
		}
	}
	if present || out["roles"] == nil {
		names := make([]string, 0, len(roles))
		for r := range roles {
			names = append(names, r)
		}
		sort.Strings(names)
		out["roles"] = names
	}
	return out
}
