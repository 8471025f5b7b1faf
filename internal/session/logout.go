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

func (m *Manager) logoutCookieName() string { return m.set.CookieName + "-logout" }

func (m *Manager) logoutKey(secret string) string {
	sum := sha256.Sum256([]byte(m.set.App + "\x00logout\x00" + secret))
	return "logout:" + base64.RawURLEncoding.EncodeToString(sum[:])
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
	http.SetCookie(w, &http.Cookie{
		Name: m.logoutCookieName(), Value: secret, Path: "/", Domain: m.set.CookieDomain,
		MaxAge: int(logoutTTL / time.Second), HttpOnly: true, Secure: m.set.CookieSecure, SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// ErrNoLogout means the browser has no pending logout (no cookie, or it
// was used or expired).
var ErrNoLogout = errors.New("session: no pending logout")

// TakeLogout returns the ID token stashed by StashLogout, once, and clears
// the cookie.
func (m *Manager) TakeLogout(w http.ResponseWriter, r *http.Request) (string, error) {
	c, err := r.Cookie(m.logoutCookieName())
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return "", ErrNoLogout
	}
	http.SetCookie(w, &http.Cookie{
		Name: m.logoutCookieName(), Value: "", Path: "/", Domain: m.set.CookieDomain,
		MaxAge: -1, Expires: time.Unix(0, 0), HttpOnly: true, Secure: m.set.CookieSecure, SameSite: http.SameSiteLaxMode,
	})
	key := m.logoutKey(c.Value)
	sealed, err := m.backend.Take(r.Context(), key)
	if errors.Is(err, ErrNotFound) {
		return "", ErrNoLogout
	}
	if err != nil {
		return "", err
	}
	idToken, err := m.keys.Open(sealed, []byte(key))
	if err != nil {
		return "", ErrNoLogout
	}
	return string(idToken), nil
}
