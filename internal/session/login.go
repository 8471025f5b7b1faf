package session

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Login-transaction errors from FinishLogin.
var (
	// ErrLoginUnknown: no pending transaction for this state in this browser
	// (never started, already used, e.g. the back button, or timed out).
	ErrLoginUnknown = errors.New("session: unknown or used login state")
	// ErrLoginForeign: the state belongs to a transaction of another browser.
	ErrLoginForeign = errors.New("session: login state belongs to another browser")
	// ErrLoginExpired: the transaction is older than the login timeout;
	// FinishLogin still returns it so the caller can restart the login.
	ErrLoginExpired = errors.New("session: login transaction expired")
)

// LoginTx is a pending authorization request, kept server-side. Only a
// random binding secret goes to the browser, in a cookie named after the
// state, so several tabs can log in at once.
type LoginTx struct {
	State    string `json:"-"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	ReturnTo string `json:"returnTo"`
	// MaxAge is the max_age sent to the provider ("" when none): the
	// callback checks the ID token's auth_time against it.
	MaxAge    string    `json:"maxAge,omitempty"`
	CreatedAt time.Time `json:"created"`
	Binding   []byte    `json:"binding"`
}

func (m *Manager) txCookiePrefix() string { return m.helperCookie("-tx-") }

func (m *Manager) txCookieName(state string) string {
	sum := sha256.Sum256([]byte("cookie\x00" + state))
	return m.txCookiePrefix() + base64.RawURLEncoding.EncodeToString(sum[:9])
}

func (m *Manager) txKey(state string) string {
	sum := sha256.Sum256([]byte(m.set.App + "\x00" + state))
	return "tx:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (m *Manager) txCookie(name, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		// Host-only (and __Host- when Secure) even when the session cookie
		// has a domain: a sibling subdomain must not plant or read it.
		Name: name, Value: value, Path: "/",
		MaxAge: maxAge, HttpOnly: true, Secure: m.set.CookieSecure,
		// Lax: the provider's redirect back is a top-level GET navigation.
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.Expires = time.Unix(0, 0) // for clients that ignore Max-Age=0
	}
	if m.set.CrossSiteCallback {
		// form_post: the provider's page POSTs to the callback cross-site.
		// The cookie only binds a pending login (a random secret, useless
		// without the state) and is deleted at the callback.
		c.SameSite, c.Secure = http.SameSiteNoneMode, true
	}
	return c
}

// BeginLogin stores tx server-side and binds it to the browser with a
// short-lived cookie. Beyond MaxPendingLogins the browser's oldest pending
// transactions are dropped.
func (m *Manager) BeginLogin(w http.ResponseWriter, r *http.Request, tx *LoginTx) error {
	now := m.set.Now()
	tx.CreatedAt = now
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	sum := sha256.Sum256(secret)
	tx.Binding = sum[:]
	plain, err := json.Marshal(tx)
	if err != nil {
		return err
	}
	key := m.txKey(tx.State)
	if err := m.backend.PutOnce(r.Context(), key, m.keys.Seal(plain, []byte(key)), m.set.LoginTimeout); err != nil {
		return fmt.Errorf("store login transaction: %w", err)
	}
	m.dropOldLogins(w, r)
	value := base64.RawURLEncoding.EncodeToString(secret) + "." + strconv.FormatInt(now.Unix(), 10)
	http.SetCookie(w, m.txCookie(m.txCookieName(tx.State), value, int(m.set.LoginTimeout/time.Second)))
	return nil
}

func (m *Manager) dropOldLogins(w http.ResponseWriter, r *http.Request) {
	type pending struct {
		name    string
		created int64
	}
	var list []pending
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, m.txCookiePrefix()) {
			continue
		}
		_, ts, _ := strings.Cut(c.Value, ".")
		created, _ := strconv.ParseInt(ts, 10, 64)
		list = append(list, pending{c.Name, created})
	}
	if len(list) < m.set.MaxPendingLogins {
		return
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].created < list[j].created })
	for _, p := range list[:len(list)-m.set.MaxPendingLogins+1] {
		http.SetCookie(w, m.txCookie(p.name, "", -1))
	}
}

// FinishLogin takes the transaction for state, once: it checks that this
// browser started it (binding cookie), removes it from the store and clears
// the cookie. A state without this browser's cookie is refused without
// consuming the transaction, so a stolen state cannot burn a victim's login.
func (m *Manager) FinishLogin(w http.ResponseWriter, r *http.Request, state string) (*LoginTx, error) {
	if state == "" || len(state) > 512 {
		return nil, ErrLoginUnknown
	}
	name := m.txCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, ErrLoginUnknown
	}
	http.SetCookie(w, m.txCookie(name, "", -1))
	secretB64, _, _ := strings.Cut(c.Value, ".")
	secret, err := base64.RawURLEncoding.DecodeString(secretB64)
	if err != nil {
		return nil, ErrLoginForeign
	}
	key := m.txKey(state)
	sealed, err := m.backend.Take(r.Context(), key)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrLoginUnknown
	}
	if err != nil {
		return nil, err
	}
	plain, err := m.keys.Open(sealed, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoginUnknown, err)
	}
	var tx LoginTx
	if err := json.Unmarshal(plain, &tx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoginUnknown, err)
	}
	tx.State = state
	sum := sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(sum[:], tx.Binding) != 1 {
		// Not this browser's transaction: put it back, so that a leaked
		// state cannot burn its owner's login.
		if left := m.set.LoginTimeout - m.set.Now().Sub(tx.CreatedAt); left > 0 {
			_ = m.backend.PutOnce(r.Context(), key, sealed, left)
		}
		return nil, ErrLoginForeign
	}
	if m.set.Now().Sub(tx.CreatedAt) > m.set.LoginTimeout {
		return &tx, ErrLoginExpired // the caller may restart with tx.ReturnTo
	}
	return &tx, nil
}
