// Package session owns the browser's session: the cookie (through scs), the
// server-side record with the tokens, encryption at rest, login transactions
// and the per-session refresh lock. It knows nothing of OIDC wire formats.
//
// Storage layout. scs issues the session cookie: an opaque 256-bit token,
// stored by scs under a hash of it (HashTokenInStore) for the cookie's
// lifetime and destroyed at logout. The record (tokens, claims) lives in the
// Backend under another hash of the same token (recordID), so a request
// finds it in one lookup; it is sealed with the Keyring and versioned. scs
// never writes it, so a slow request that loaded the session before a
// refresh cannot write old tokens back (scs saves whole snapshots, last
// writer wins). Record updates are compare-and-set on the version.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
)

// ErrNoSession means the request has no live session: no cookie, an unknown
// or expired one, or a record that cannot be read.
var ErrNoSession = errors.New("session: no session")

// Record is one signed-in browser session.
type Record struct {
	// ID is the record's key in the Backend; random, never sent to the browser.
	ID string `json:"-"`
	// Version is the Backend version the record was read at.
	Version int64 `json:"-"`
	// Seen is the last activity time used for the idle timeout.
	Seen time.Time `json:"-"`

	App     string `json:"app"`
	Subject string `json:"sub"`
	// SID is the provider's session ID (the ID token's sid), for back-channel logout.
	SID string `json:"sid,omitempty"`
	// Claims are the ID-token claims /auth/me may show, kept as JSON: most
	// requests (proxied calls) never look at them, so they are not decoded.
	Claims Claims `json:"claims,omitempty"`
	// Nonce sent at login; refreshed ID tokens may repeat it.
	Nonce string `json:"nonce,omitempty"`

	IDToken      string    `json:"idt,omitempty"`
	AccessToken  string    `json:"at,omitempty"`
	RefreshToken string    `json:"rt,omitempty"`
	TokenType    string    `json:"tt,omitempty"`
	Expiry       time.Time `json:"exp"`

	CreatedAt time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires"`
}

// Claims is a JSON object of claims.
type Claims json.RawMessage

// NewClaims encodes m; a value that cannot be encoded is dropped.
func NewClaims(m map[string]any) Claims {
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

// Map decodes the claims (nil when empty or invalid).
func (c Claims) Map() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(c, &m)
	return m
}

// MarshalJSON writes the claims as they are ("null" when empty).
func (c Claims) MarshalJSON() ([]byte, error) {
	if len(c) == 0 {
		return []byte("null"), nil
	}
	return c, nil
}

// UnmarshalJSON keeps a copy of the raw JSON.
func (c *Claims) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = nil
		return nil
	}
	*c = append((*c)[:0], b...)
	return nil
}

// Settings configure a Manager. Every zero field gets the default named.
type Settings struct {
	// App is the application name, stored in records.
	App string
	// CookieName, default "__Host-bff".
	CookieName string
	// CookieDomain is empty for a host-only cookie.
	CookieDomain string
	// CookieSecure sets Secure on every cookie.
	CookieSecure bool
	// SameSite of the session cookie, default Lax.
	SameSite http.SameSite
	// CrossSiteCallback sends login-transaction cookies with SameSite=None
	// (and Secure), for providers answering with response_mode=form_post: a
	// cross-site POST carries no Lax cookie. The session cookie is unchanged.
	CrossSiteCallback bool
	// IdleTimeout, default 8h.
	IdleTimeout time.Duration
	// AbsoluteLifetime, default 24h.
	AbsoluteLifetime time.Duration
	// LoginTimeout bounds login transactions, default 10m.
	LoginTimeout time.Duration
	// MaxPendingLogins per browser, default 5.
	MaxPendingLogins int
	// Now is the clock, default time.Now.
	Now func() time.Time
}

// Manager handles the sessions of one app.
type Manager struct {
	set     Settings
	scs     *scs.SessionManager
	backend Backend
	keys    *Keyring
}

const idKey = "id"

// NewManager wires a Manager. cookieStore is the scs store (memstore or
// redisstore) that maps cookie tokens to record IDs.
func NewManager(set Settings, cookieStore scs.Store, backend Backend, keys *Keyring) *Manager {
	if set.CookieName == "" {
		set.CookieName = "__Host-bff"
	}
	if set.SameSite == 0 {
		set.SameSite = http.SameSiteLaxMode
	}
	if set.IdleTimeout == 0 {
		set.IdleTimeout = 8 * time.Hour
	}
	if set.AbsoluteLifetime == 0 {
		set.AbsoluteLifetime = 24 * time.Hour
	}
	if set.LoginTimeout == 0 {
		set.LoginTimeout = 10 * time.Minute
	}
	if set.MaxPendingLogins == 0 {
		set.MaxPendingLogins = 5
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	sm := scs.New()
	sm.Store = cookieStore
	sm.Lifetime = set.AbsoluteLifetime
	// IdleTimeout stays 0: with it scs would rewrite every session on every
	// request. Idle expiry is enforced on the record (Seen).
	sm.IdleTimeout = 0
	sm.HashTokenInStore = true
	sm.Codec = idCodec{}
	sm.Cookie.Name = set.CookieName
	sm.Cookie.Domain = set.CookieDomain
	sm.Cookie.HttpOnly = true
	sm.Cookie.Path = "/"
	sm.Cookie.Secure = set.CookieSecure
	sm.Cookie.SameSite = set.SameSite
	sm.Cookie.Persist = true
	return &Manager{set: set, scs: sm, backend: backend, keys: keys}
}

// CookieName is the session cookie's name.
func (m *Manager) CookieName() string { return m.set.CookieName }

// helperCookie names a short-lived helper cookie (login transaction,
// pending logout): the session cookie's name without its prefix, plus
// suffix, as a __Host- cookie when cookies are Secure. Helper cookies are
// always host-only.
func (m *Manager) helperCookie(suffix string) string {
	base := strings.TrimPrefix(strings.TrimPrefix(m.set.CookieName, "__Host-"), "__Secure-")
	if m.set.CookieSecure {
		return "__Host-" + base + suffix
	}
	return base + suffix
}

// OwnsCookie reports whether name is one of this manager's cookies (the
// session cookie or a helper cookie): never forwarded upstream, never
// settable by an upstream.
func (m *Manager) OwnsCookie(name string) bool {
	return name == m.set.CookieName || strings.HasPrefix(name, m.set.CookieName+"-") ||
		strings.HasPrefix(name, m.helperCookie("-"))
}

// Settings returns the effective settings.
func (m *Manager) Settings() Settings { return m.set }

// Load returns the live session of r, or ErrNoSession. Store failures wrap
// ErrUnavailable.
func (m *Manager) Load(r *http.Request) (*Record, error) {
	c, err := r.Cookie(m.set.CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrNoSession
	}
	if len(c.Value) > maxCookieToken {
		return nil, ErrNoSession
	}
	return m.Get(r.Context(), recordID(c.Value))
}

// maxCookieToken bounds the cookie values looked up (scs tokens are 43
// characters).
const maxCookieToken = 128

// recordID is the Backend key of the session whose cookie holds token: a
// hash of it, so the store never holds the cookie (SPEC §5) and a request
// finds its record in one lookup. Only the browser holding the token can
// name its record; the ID cannot be turned back into a cookie.
func recordID(token string) string {
	sum := sha256.Sum256([]byte("bff-record\x00" + token))
	return hex.EncodeToString(sum[:])
}

// Get reads the record id, enforcing the idle and absolute lifetimes.
func (m *Manager) Get(ctx context.Context, id string) (*Record, error) {
	st, err := m.backend.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	plain, err := m.keys.Open(st.Data, []byte(id))
	if err != nil {
		return nil, fmt.Errorf("%w: record %s: %w", ErrNoSession, shortID(id), err)
	}
	var rec Record
	if err := decodeRecord(plain, &rec); err != nil {
		return nil, fmt.Errorf("%w: record %s: %w", ErrNoSession, shortID(id), err)
	}
	rec.ID, rec.Version, rec.Seen = id, st.Version, time.Unix(st.Seen, 0)
	if rec.App != m.set.App {
		return nil, ErrNoSession // another app's session: not ours to end
	}
	now := m.set.Now()
	if !now.Before(rec.ExpiresAt) || now.Sub(rec.Seen) >= m.set.IdleTimeout {
		_ = m.backend.Delete(ctx, id)
		return nil, ErrNoSession
	}
	return &rec, nil
}

// ttl is how long the Backend keeps rec: until the idle or the absolute
// deadline, whichever comes first.
func (m *Manager) ttl(rec *Record, seen time.Time) time.Duration {
	d := min(m.set.IdleTimeout, rec.ExpiresAt.Sub(seen))
	return max(d, time.Second)
}

// Touch records activity for the idle timeout. It writes at most once a
// minute per session (or per tenth of the idle timeout) so reads stay cheap.
func (m *Manager) Touch(ctx context.Context, rec *Record) error {
	now := m.set.Now()
	if now.Sub(rec.Seen) < min(time.Minute, m.set.IdleTimeout/10) {
		return nil
	}
	if err := m.backend.Touch(ctx, rec.ID, now.Unix(), m.ttl(rec, now)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	rec.Seen = now
	return nil
}

// IdleExpiresIn and ExpiresIn report the remaining lifetimes of rec.
func (m *Manager) IdleExpiresIn(rec *Record) time.Duration {
	now := m.set.Now()
	return min(rec.Seen.Add(m.set.IdleTimeout).Sub(now), rec.ExpiresAt.Sub(now))
}

// ExpiresIn reports the remaining absolute lifetime of rec.
func (m *Manager) ExpiresIn(rec *Record) time.Duration { return rec.ExpiresAt.Sub(m.set.Now()) }

func (m *Manager) seal(rec *Record) ([]byte, error) {
	return m.keys.Seal(encodeRecord(rec), []byte(rec.ID)), nil
}

// Start begins a new session for rec after a successful login: a new record
// ID and a new cookie token, never the pre-login ones (session fixation,
// OWASP Session Management Cheat Sheet). An existing session of the browser
// is ended first.
func (m *Manager) Start(w http.ResponseWriter, r *http.Request, rec *Record) error {
	ctx := r.Context()
	if _, err := m.End(w, r); err != nil {
		return err
	}
	m.discardLogout(w, r)
	// scs issues the cookie token (256 random bits, never the pre-login
	// one); the record is keyed by its hash.
	sctx, err := m.scs.Load(ctx, "")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	token, expiry, err := m.scs.Commit(sctx)
	if err != nil {
		return fmt.Errorf("%w: commit cookie session: %v", ErrUnavailable, err)
	}
	now := m.set.Now()
	rec.ID = recordID(token)
	rec.App = m.set.App
	rec.CreatedAt = now
	rec.ExpiresAt = now.Add(m.set.AbsoluteLifetime)
	rec.Seen = now
	data, err := m.seal(rec)
	if err != nil {
		return err
	}
	ttl := m.ttl(rec, now)
	if err := m.backend.Create(ctx, rec.ID, Stored{Seen: now.Unix(), Data: data}, ttl); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	for _, k := range m.indexKeys(rec) {
		if err := m.backend.IndexAdd(ctx, k, rec.ID, m.set.AbsoluteLifetime); err != nil {
			return fmt.Errorf("index session: %w", err)
		}
	}
	m.scs.WriteSessionCookie(sctx, w, token, expiry)
	return nil
}

// Save writes rec back if nobody changed it since it was read; on success
// rec.Version is the new version. ErrConflict means another request (or
// replica) won: re-read and use its tokens.
func (m *Manager) Save(ctx context.Context, rec *Record) error {
	data, err := m.seal(rec)
	if err != nil {
		return err
	}
	now := m.set.Now()
	if err := m.backend.Update(ctx, rec.ID, rec.Version, Stored{Seen: now.Unix(), Data: data}, m.ttl(rec, now)); err != nil {
		return err
	}
	rec.Version++
	rec.Seen = now
	return nil
}

// End ends the browser's session, if any, and clears the cookie. It returns
// the ended record (nil when there was none); it works without a session.
func (m *Manager) End(w http.ResponseWriter, r *http.Request) (*Record, error) {
	c, err := r.Cookie(m.set.CookieName)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	ctx, err := m.scs.Load(r.Context(), c.Value)
	if err != nil {
		return nil, fmt.Errorf("%w: load cookie session: %v", ErrUnavailable, err)
	}
	var rec *Record
	if len(c.Value) <= maxCookieToken {
		id := recordID(c.Value)
		rec, _ = m.Get(r.Context(), id)
		// Only a record of this app is ended here: another app with the
		// same cookie name must not lose its session (or keep its refresh
		// token unrevoked).
		if rec != nil {
			if err := m.Delete(r.Context(), id, rec); err != nil {
				return nil, err
			}
		}
	}
	if err := m.scs.Destroy(ctx); err != nil {
		return nil, fmt.Errorf("%w: destroy cookie session: %v", ErrUnavailable, err)
	}
	m.scs.WriteSessionCookie(ctx, w, "", time.Time{})
	return rec, nil
}

// Delete removes record id (and its index entries when rec is known). The
// cookie mapping is left to expire: a cookie whose record is gone is no
// session. Used by back-channel logout and the admin API, on any replica.
func (m *Manager) Delete(ctx context.Context, id string, rec *Record) error {
	if err := m.backend.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if rec != nil {
		for _, k := range m.indexKeys(rec) {
			_ = m.backend.IndexRemove(ctx, k, id)
		}
	}
	return nil
}

// EndBy ends every session of the provider session sid or, when sid is
// empty, of the user sub. It returns how many were live.
func (m *Manager) EndBy(ctx context.Context, sid, sub string) (int, error) {
	key := m.sidKey(sid)
	if sid == "" {
		key = m.subKey(sub)
	}
	ids, err := m.backend.IndexMembers(ctx, key)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		rec, err := m.Get(ctx, id)
		if err == nil && (sub == "" || rec.Subject == sub) && (sid == "" || rec.SID == sid) {
			n++
			if err := m.Delete(ctx, id, rec); err != nil {
				return n, err
			}
		} else if errors.Is(err, ErrNoSession) {
			_ = m.backend.IndexRemove(ctx, key, id)
		}
	}
	return n, nil
}

// indexKeys names the index sets of rec. The subject is hashed so the store
// holds no user identifier in clear where it is not needed.
func (m *Manager) indexKeys(rec *Record) []string {
	keys := []string{m.subKey(rec.Subject)}
	if rec.SID != "" {
		keys = append(keys, m.sidKey(rec.SID))
	}
	return keys
}

func (m *Manager) subKey(sub string) string { return "ix:sub:" + hashHex(m.set.App+"\x00"+sub) }
func (m *Manager) sidKey(sid string) string { return "ix:sid:" + hashHex(m.set.App+"\x00"+sid) }

// Lock serialises refreshes of one session across replicas; see Backend.Lock.
func (m *Manager) Lock(ctx context.Context, id string, lease time.Duration) (func(), error) {
	return m.backend.Lock(ctx, "lock:"+id, lease)
}

// Ping checks the backend.
func (m *Manager) Ping(ctx context.Context) error { return m.backend.Ping(ctx) }

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// HashID is a short, non-reversible name of a session for logs and audit.
func HashID(id string) string { return hashHex("log\x00" + id)[:16] }

func shortID(id string) string { return HashID(id) }

// FirstUse marks key as used for ttl. It returns ErrExists when the key was
// already used (a replayed logout-token jti).
func (m *Manager) FirstUse(ctx context.Context, key string, ttl time.Duration) error {
	return m.backend.PutOnce(ctx, "once:"+key, []byte{1}, max(ttl, time.Second))
}

// ListBySubject returns the live sessions of user sub (for the admin API).
func (m *Manager) ListBySubject(ctx context.Context, sub string) ([]*Record, error) {
	key := m.subKey(sub)
	ids, err := m.backend.IndexMembers(ctx, key)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		rec, err := m.Get(ctx, id)
		switch {
		case err == nil && rec.Subject == sub:
			out = append(out, rec)
		case errors.Is(err, ErrNoSession):
			_ = m.backend.IndexRemove(ctx, key, id)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}
