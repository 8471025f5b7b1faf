package devidp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequestLifetime is how long a started login (and its code) stays
// valid.
const authRequestLifetime = 10 * time.Minute

// errNotFound is returned for unknown or expired auth requests, codes and
// tokens; the library turns it into the protocol error that fits.
var errNotFound = errors.New("not found or expired")

// storage implements op.Storage (plus the optional request-aware hooks)
// entirely in memory. One mutex guards every map, the keys and the
// counters; nothing is held across I/O.
type storage struct {
	mu  sync.Mutex
	now func() time.Time

	issuer             string
	projectID          string
	accessTTL          time.Duration
	refreshTTL         time.Duration
	sessionTTL         time.Duration
	disableSSO         bool
	omitNonceOnRefresh bool
	loggedOutURL       string
	backchannel        *backchannelSender

	// Read-only after construction.
	clients     map[string]*opClient
	usersByID   map[string]*User
	usersByName map[string]*User

	authRequests    map[string]*authRequest
	codes           map[string]string // code -> auth request ID
	accessTokens    map[string]*accessToken
	refreshTokens   map[string]*refreshToken
	sessions        map[string]*opSession // sid -> session
	browserSessions map[string]string     // session cookie value -> sid

	activeKey   *signingKey
	retiredKeys []*signingKey

	stats Stats
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

func newRandomID() string { return rand.Text() }

// user returns the user with the given ID, or nil.
func (s *storage) user(id string) *User { return s.usersByID[id] }

// checkPassword returns the user whose username and password match.
func (s *storage) checkPassword(username, password string) (*User, bool) {
	u, ok := s.usersByName[username]
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return nil, false
	}
	return u, true
}

// purgeLocked drops expired auth requests, codes, tokens and sessions. It
// runs lazily whenever a new auth request or token is created.
func (s *storage) purgeLocked(now time.Time) {
	for id, ar := range s.authRequests {
		if now.Sub(ar.created) > authRequestLifetime {
			delete(s.authRequests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.authRequests[id]; !ok {
			delete(s.codes, code)
		}
	}
	live := make(map[string]bool)
	for id, at := range s.accessTokens {
		if now.After(at.expires) {
			delete(s.accessTokens, id)
			continue
		}
		live[at.sid] = true
	}
	for tok, rt := range s.refreshTokens {
		if now.After(rt.expires) {
			delete(s.refreshTokens, tok)
			continue
		}
		live[rt.sid] = true
	}
	for sid, sess := range s.sessions {
		if now.After(sess.browserExpires) && !live[sid] {
			s.deleteSessionLocked(sess)
		}
	}
}

// CreateAuthRequest implements op.Storage. It stores the validated request.
// If the browser already has a live OP session that may be reused (see
// ssoSessionLocked), the request is completed at once and the login page
// only redirects back; with prompt=none and no such session it fails with
// login_required.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purgeLocked(now)

	ar := &authRequest{
		id:           newRandomID(),
		created:      now,
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone(req.Scopes),
		audience:     []string{req.ClientID, s.projectID},
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		prompt:       slices.Clone(req.Prompt),
		maxAge:       req.MaxAge,
		loginHint:    req.LoginHint,
		hintUserID:   userID,
	}
	if req.CodeChallenge != "" {
		ar.codeChallenge = &oidc.CodeChallenge{
			Challenge: req.CodeChallenge,
			Method:    req.CodeChallengeMethod,
		}
	}
	if sess := s.ssoSessionLocked(ctx, ar, now); sess != nil {
		ar.userID, ar.sid, ar.authTime, ar.done = sess.userID, sess.id, sess.authTime, true
	} else if slices.Contains(ar.prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	s.authRequests[ar.id] = ar
	return ar.snapshot(), nil
}

// authRequestLocked returns the stored, unexpired auth request.
func (s *storage) authRequestLocked(id string) (*authRequest, error) {
	ar, ok := s.authRequests[id]
	if !ok || s.now().Sub(ar.created) > authRequestLifetime {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	return ar, nil
}

// AuthRequestByID implements op.Storage.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, err := s.authRequestLocked(id)
	if err != nil {
		return nil, err
	}
	return ar.snapshot(), nil
}

// AuthRequestByCode implements op.Storage. A code is valid while its auth
// request is (at most authRequestLifetime after /authorize) and until it
// has been redeemed.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	ar, err := s.authRequestLocked(id)
	if err != nil || !ar.done || ar.exchanged {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	return ar.snapshot(), nil
}

// SaveAuthCode implements op.Storage.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.authRequestLocked(id); err != nil {
		return err
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.Storage; it also drops the request's code.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, reqID := range s.codes {
		if reqID == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", clientID, errNotFound)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage with a constant-time
// comparison of the secret.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, clientSecret string) error {
	c, ok := s.clients[clientID]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(clientSecret)) != 1 {
		return errors.New("invalid client_id or client_secret")
	}
	return nil
}

// GetKeyByIDAndClientID implements op.Storage. The JWT profile grant and
// private_key_jwt are not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported")
}

// ValidateJWTProfileScopes implements op.Storage; see GetKeyByIDAndClientID.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }
