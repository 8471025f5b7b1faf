package session

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"
)

// logoutTTL bounds how long an ended session's ID token is kept for the
// provider's end-session redirect.
const logoutTTL = 2 * time.Minute

// maxLogoutCookies bounds how many same-named logout cookies are tried.
const maxLogoutCookies = 4

func (m *Manager) logoutCookieName() string { return m.helperCookie("-logout") }

func (m *Manager) logoutKey(secret string) string {
	sum := sha256.Sum256([]byte(m.set.App + "\x00logout\x00" + secret))
	return "logout:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (m *Manager) logoutCookie(value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		// Host-only, __Host- when Secure: a sibling subdomain cannot plant
		// one that would shadow the real cookie.
		Name: m.logoutCookieName(), Value: value, Path: "/",
		MaxAge: maxAge, HttpOnly: true, Secure: m.set.CookieSecure, SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.Expires = time.Unix(0, 0)
	}
	return c
}

// StashLogout keeps idToken server-side for a short while, bound to this
// browser by an HttpOnly cookie, so that the redirect to the provider's
// end-session endpoint can carry id_token_hint without the token ever
// being readable by script (TakeLogout hands it back once).
func (m *Manager) StashLogout(w http.ResponseWriter, r *http.Request, idToken string) error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	key := m.logoutKey(secret)
	if err := m.backend.PutOnce(r.Context(), key, m.keys.Seal([]byte(idToken), []byte(key)), logoutTTL); err != nil {
		return err
	}
	http.SetCookie(w, m.logoutCookie(secret, int(logoutTTL/time.Second)))
	return nil
}

// ErrNoLogout means the browser has no pending logout (no cookie, or it
// was used or expired).
var ErrNoLogout = errors.New("session: no pending logout")

// TakeLogout returns the ID token stashed by StashLogout, once, and clears
// the cookie. Every cookie of that name the browser sent is tried (a
// planted one cannot shadow the real one). With the store down the cookie
// is kept, so the logout can be continued later.
func (m *Manager) TakeLogout(w http.ResponseWriter, r *http.Request) (string, error) {
	name, tried := m.logoutCookieName(), 0
	for _, c := range r.Cookies() {
		if c.Name != name || c.Value == "" || len(c.Value) > 128 {
			continue
		}
		if tried++; tried > maxLogoutCookies {
			break
		}
		key := m.logoutKey(c.Value)
		sealed, err := m.backend.Take(r.Context(), key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		http.SetCookie(w, m.logoutCookie("", -1))
		idToken, err := m.keys.Open(sealed, []byte(key))
		if err != nil {
			return "", ErrNoLogout
		}
		return string(idToken), nil
	}
	if tried > 0 {
		http.SetCookie(w, m.logoutCookie("", -1))
	}
	return "", ErrNoLogout
}

// discardLogout drops a pending logout of this browser (a new login must
// not be ended by a leftover logout continuation).
func (m *Manager) discardLogout(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(m.logoutCookieName()); err == nil {
		_, _ = m.TakeLogout(w, r)
	}
}
