package devidp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

const (
	// csrfCookie holds the browser's random CSRF secret (OWASP CSRF
	// Prevention Cheat Sheet, "signed double-submit cookie"). The form's
	// csrf field is an HMAC of it and the auth request ID.
	csrfCookie = "devidp_csrf"

	// sessionCookie holds the key of the browser's OP session, used for
	// single sign-on and for RP-initiated logout without id_token_hint.
	// Cookies are not separated by port, so the names are prefixed to not
	// collide with a relying party's cookies on localhost.
	sessionCookie = "devidp_session"

	// maxLoginForm bounds the login POST body.
	maxLoginForm = 16 << 10

	// Login form field names, also the ids a browser test fills in.
	fieldUsername      = "username"
	fieldPassword      = "password"
	fieldAuthRequestID = "authRequestID"
	fieldCSRF          = "csrf"
)

// loginUI serves the login form at <issuer path>/login and the logged-out
// page at <issuer path>/logged-out.
type loginUI struct {
	store       *storage
	pages       *template.Template
	csrfKey     []byte
	callbackURL func(r *http.Request, authRequestID string) string
	loginPath   string
	cookiePath  string
	secure      bool
	demo        []demoAccount
	logger      zerolog.Logger
}

type demoAccount struct {
	Username, Password, Roles string
}

type loginPage struct {
	Nonce         string
	Action        string
	ClientID      string
	AuthRequestID string
	CSRF          string
	Username      string
	Error         string
	Demo          []demoAccount
}

// loginTemplates is parsed once per Provider. html/template escapes every
// value for its context.
const loginTemplates = `
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · devidp</title>
{{end}}
{{define "style"}}<style nonce="{{.}}">
body{font-family:system-ui,sans-serif;background:#f4f4f6;margin:0}
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem;box-shadow:0 1px 4px #0002}
label{display:block;margin-top:1rem}input{width:100%;box-sizing:border-box;padding:.5rem;margin-top:.25rem}
button{margin-top:1.5rem;width:100%;padding:.6rem}.error{color:#b00020}.hint{margin-top:2rem;font-size:.9rem;color:#555}
</style>{{end}}
{{define "login"}}{{template "head" "Sign in"}}{{template "style" .Nonce}}</head>
<body><main>
<h1>Sign in</h1>
<p>to <strong>{{.ClientID}}</strong> (development identity provider)</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login-submit" type="submit">Sign in</button>
</form>
{{if .Demo}}<div class="hint"><p>Demo accounts (username / password):</p><ul>
{{range .Demo}}<li><code>{{.Username}}</code> / <code>{{.Password}}</code>{{if .Roles}} — roles: {{.Roles}}{{end}}</li>
{{end}}</ul></div>{{end}}
</main></body></html>
{{end}}
{{define "message"}}{{template "head" .Title}}{{template "style" .Nonce}}</head>
<body><main><h1>{{.Title}}</h1><p>{{.Text}}</p></main></body></html>
{{end}}
`

type messagePage struct {
	Nonce, Title, Text string
}

func newLoginUI(store *storage, users []User, loginPath, cookiePath string, secure bool, logger zerolog.Logger) (*loginUI, error) {
	pages, err := template.New("devidp").Parse(loginTemplates)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	demo := make([]demoAccount, 0, len(users))
	for _, u := range users {
		demo = append(demo, demoAccount{Username: u.Username, Password: u.Password, Roles: strings.Join(u.Roles, ", ")})
	}
	return &loginUI{
		store:      store,
		pages:      pages,
		csrfKey:    key,
		loginPath:  loginPath,
		cookiePath: cookiePath,
		secure:     secure,
		demo:       demo,
		logger:     logger,
	}, nil
}

// ServeHTTP serves GET (the form) and POST (the credentials) of /login.
func (l *loginUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		l.show(w, r)
	case http.MethodPost:
		l.submit(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		l.message(w, http.StatusMethodNotAllowed, "Method not allowed", "Use the login form.")
	}
}

// show renders the form, or redirects straight back to the library's
// callback when the auth request was already completed by single sign-on.
func (l *loginUI) show(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get(fieldAuthRequestID)
	clientID, loginHint, done, err := l.store.authRequestState(id)
	if err != nil {
		l.message(w, http.StatusBadRequest, "Login expired", "This login request is unknown or has expired. Start again from the application.")
		return
	}
	if done {
		http.Redirect(w, r, l.callbackURL(r, id), http.StatusSeeOther)
		return
	}
	l.form(w, r, http.StatusOK, clientID, id, loginHint, "")
}

// submit checks the CSRF token, then the credentials. A wrong password
// shows the form again with 401; success completes the auth request, sets
// the OP session cookie and redirects (303) to the library's callback,
// which sends the code to the client.
func (l *loginUI) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		l.message(w, http.StatusBadRequest, "Bad request", "The login form could not be read.")
		return
	}
	id := r.PostForm.Get(fieldAuthRequestID)
	clientID, _, done, err := l.store.authRequestState(id)
	if err != nil || done {
		l.message(w, http.StatusBadRequest, "Login expired", "This login request is unknown, expired or already completed. Start again from the application.")
		return
	}
	if !l.validCSRF(r, id, r.PostForm.Get(fieldCSRF)) {
		l.logger.Warn().Str("client_id", clientID).Msg("login: CSRF check failed")
		l.message(w, http.StatusForbidden, "Forbidden", "The form was stale or not sent by this browser. Reload the login page and try again.")
		return
	}
	username := r.PostForm.Get(fieldUsername)
	user, ok := l.store.checkPassword(username, r.PostForm.Get(fieldPassword))
	if !ok {
		l.logger.Info().Str("username", username).Str("client_id", clientID).Msg("login: wrong username or password")
		l.form(w, r, http.StatusUnauthorized, clientID, id, username, "Wrong username or password.")
		return
	}
	key, err := l.store.completeLogin(r.Context(), id, user.ID)
	if err != nil {
		l.message(w, http.StatusBadRequest, "Login expired", "This login request is unknown, expired or already completed. Start again from the application.")
		return
	}
	l.setCookie(w, sessionCookie, key, l.cookiePath, int(l.store.sessionTTL.Seconds()))
	l.logger.Info().Str("sub", user.ID).Str("client_id", clientID).Msg("login: success")
	http.Redirect(w, r, l.callbackURL(r, id), http.StatusSeeOther)
}

// form renders the login form; it (re)issues the CSRF cookie if needed.
func (l *loginUI) form(w http.ResponseWriter, r *http.Request, status int, clientID, id, username, msg string) {
	secret := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		secret = c.Value
	} else {
		secret = rand.Text() + rand.Text()
		l.setCookie(w, csrfCookie, secret, l.loginPath, 0)
	}
	nonce := securityHeaders(w)
	w.WriteHeader(status)
	_ = l.pages.ExecuteTemplate(w, "login", loginPage{
		Nonce:         nonce,
		Action:        l.loginPath,
		ClientID:      clientID,
		AuthRequestID: id,
		CSRF:          l.csrfToken(secret, id),
		Username:      username,
		Error:         msg,
		Demo:          l.demo,
	})
}

// message renders a plain page with a title and a sentence.
func (l *loginUI) message(w http.ResponseWriter, status int, title, text string) {
	nonce := securityHeaders(w)
	w.WriteHeader(status)
	_ = l.pages.ExecuteTemplate(w, "message", messagePage{Nonce: nonce, Title: title, Text: text})
}

// loggedOut is the page /end_session redirects to without
// post_logout_redirect_uri.
func (l *loginUI) loggedOut(w http.ResponseWriter, _ *http.Request) {
	l.message(w, http.StatusOK, "You are logged out", "You have been signed out of the development identity provider. You can close this window.")
}

func (l *loginUI) csrfToken(secret, authRequestID string) string {
	mac := hmac.New(sha256.New, l.csrfKey)
	mac.Write([]byte(secret))
	mac.Write([]byte{0})
	mac.Write([]byte(authRequestID))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (l *loginUI) validCSRF(r *http.Request, authRequestID, token string) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(token), []byte(l.csrfToken(c.Value, authRequestID)))
}

// setCookie sets an HttpOnly, SameSite=Lax cookie; Secure when the issuer
// is https. maxAge 0 makes a session cookie, a negative one deletes it.
func (l *loginUI) setCookie(w http.ResponseWriter, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   l.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// securityHeaders sets a strict Content-Security-Policy (only the page's
// own nonce-tagged style; no scripts, images, frames or base URI changes)
// and the usual hardening headers, and returns the style nonce.
// form-action is deliberately absent: after the login POST the browser is
// redirected on to the client's redirect_uri, and browsers apply
// form-action to that redirect chain.
func securityHeaders(w http.ResponseWriter) string {
	nonce := rand.Text()
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	return nonce
}
