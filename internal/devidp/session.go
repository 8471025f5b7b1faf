package devidp

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opSession is a login at the provider: one per successful password check,
// identified by sid ("V2_<random>", like ZITADEL's session IDs). Every
// token issued on the strength of that login carries the sid, and the
// session remembers which clients received tokens, so that ending it can
// notify them over the back channel.
type opSession struct {
	id             string
	userID         string
	authTime       time.Time
	browserKey     string    // value of the OP session cookie
	browserExpires time.Time // end of single sign-on from the cookie
	clients        map[string]bool
}

// browser is what ServeHTTP learnt from the request's cookies.
type browser struct {
	sessionKey string // the OP session cookie, or ""
	clear      func() // expires the OP session cookie on the response
}

type browserKey struct{}

func withBrowser(ctx context.Context, b *browser) context.Context {
	return context.WithValue(ctx, browserKey{}, b)
}

func browserFrom(ctx context.Context) *browser {
	b, _ := ctx.Value(browserKey{}).(*browser)
	return b
}

// browserSessionLocked returns the live OP session the browser's cookie
// points to, or nil.
func (s *storage) browserSessionLocked(ctx context.Context, now time.Time) *opSession {
	b := browserFrom(ctx)
	if b == nil || b.sessionKey == "" {
		return nil
	}
	sess, ok := s.sessions[s.browserSessions[b.sessionKey]]
	if !ok || now.After(sess.browserExpires) {
		return nil
	}
	return sess
}

// ssoSessionLocked returns the browser's OP session if the auth request may
// be completed with it without showing the form: single sign-on is
// enabled, no prompt=login or prompt=select_account, max_age is met, and an
// id_token_hint or login_hint names the same user.
func (s *storage) ssoSessionLocked(ctx context.Context, ar *authRequest, now time.Time) *opSession {
	if s.disableSSO || slices.Contains(ar.prompt, oidc.PromptLogin) || slices.Contains(ar.prompt, oidc.PromptSelectAccount) {
		return nil
	}
	sess := s.browserSessionLocked(ctx, now)
	if sess == nil {
		return nil
	}
	if ar.maxAge != nil && now.Sub(sess.authTime) >= time.Duration(*ar.maxAge)*time.Second {
		return nil
	}
	if ar.hintUserID != "" && ar.hintUserID != sess.userID {
		return nil
	}
	if u := s.user(sess.userID); u == nil || (ar.loginHint != "" && ar.loginHint != u.Username) {
		return nil
	}
	return sess
}

// completeLogin finishes the auth request for the user who just typed the
// right password. It reuses the browser's OP session when it belongs to
// the same user (renewing its auth_time) and starts a new one otherwise.
// It returns the value for the OP session cookie.
func (s *storage) completeLogin(ctx context.Context, authRequestID, userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, err := s.authRequestLocked(authRequestID)
	if err != nil {
		return "", err
	}
	if ar.done {
		return "", fmt.Errorf("auth request already completed")
	}
	now := s.now()
	sess := s.browserSessionLocked(ctx, now)
	if sess == nil || sess.userID != userID {
		sess = &opSession{
			id:         "V2_" + newRandomID(),
			userID:     userID,
			browserKey: newRandomID(),
			clients:    make(map[string]bool),
		}
		s.sessions[sess.id] = sess
		s.browserSessions[sess.browserKey] = sess.id
	}
	sess.authTime = now
	sess.browserExpires = now.Add(s.sessionTTL)
	ar.userID, ar.sid, ar.authTime, ar.done = userID, sess.id, now, true
	return sess.browserKey, nil
}

// authRequestState tells the login page whether a request exists and is
// already completed.
func (s *storage) authRequestState(id string) (clientID, loginHint string, done bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, err := s.authRequestLocked(id)
	if err != nil {
		return "", "", false, err
	}
	return ar.clientID, ar.loginHint, ar.done, nil
}

// deleteSessionLocked forgets a session (not its tokens).
func (s *storage) deleteSessionLocked(sess *opSession) {
	delete(s.sessions, sess.id)
	delete(s.browserSessions, sess.browserKey)
}

// endSessionsLocked ends the given OP sessions: it deletes them and every
// access and refresh token issued under them, and returns one logout
// notice per (session, client) for clients with a back-channel logout URI.
func (s *storage) endSessionsLocked(sids map[string]bool) []logoutNotice {
	var notices []logoutNotice
	for sid := range sids {
		sess, ok := s.sessions[sid]
		if !ok {
			continue
		}
		clientIDs := make([]string, 0, len(sess.clients))
		for id := range sess.clients {
			clientIDs = append(clientIDs, id)
		}
		sort.Strings(clientIDs)
		for _, id := range clientIDs {
			if c := s.clients[id]; c != nil && c.BackChannelLogoutURI != "" {
				notices = append(notices, logoutNotice{clientID: id, uri: c.BackChannelLogoutURI, sub: sess.userID, sid: sid})
			}
		}
		s.deleteSessionLocked(sess)
	}
	for id, at := range s.accessTokens {
		if sids[at.sid] {
			delete(s.accessTokens, id)
		}
	}
	for tok, rt := range s.refreshTokens {
		if sids[rt.sid] {
			delete(s.refreshTokens, tok)
		}
	}
	return notices
}

// TerminateSession implements op.Storage. The library calls
// TerminateSessionFromRequest instead; this fallback deletes the user's
// tokens for the client without notifying anyone.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteClientTokensLocked(userID, clientID)
	return nil
}

// deleteClientTokensLocked deletes the user's tokens for one client.
func (s *storage) deleteClientTokensLocked(userID, clientID string) {
	for id, at := range s.accessTokens {
		if at.userID == userID && at.clientID == clientID {
			delete(s.accessTokens, id)
		}
	}
	for tok, rt := range s.refreshTokens {
		if rt.userID == userID && rt.clientID == clientID {
			delete(s.refreshTokens, tok)
		}
	}
}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest
// (RP-initiated logout at /end_session). The library has already checked
// id_token_hint, client_id and post_logout_redirect_uri. It ends the OP
// session named by the hint's sid and the one of the browser's OP session
// cookie (if it belongs to the same user), deletes their tokens for every
// client, clears the cookie, and sends back-channel logout tokens
// synchronously before the redirect. Delivery failures are counted and
// logged but do not fail the logout. Without post_logout_redirect_uri the
// redirect goes to the provider's own "You are logged out" page.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	var hintSID string
	if req.IDTokenHintClaims != nil {
		hintSID, _ = req.IDTokenHintClaims.Claims["sid"].(string)
	}

	s.mu.Lock()
	now := s.now()
	sids := make(map[string]bool)
	if sess, ok := s.sessions[hintSID]; ok && sess.userID == req.UserID {
		sids[sess.id] = true
	}
	if sess := s.browserSessionLocked(ctx, now); sess != nil && (req.UserID == "" || sess.userID == req.UserID) {
		sids[sess.id] = true
	}
	if len(sids) == 0 && req.UserID != "" && req.ClientID != "" {
		// A hint whose session is already gone: still drop what the user
		// holds for this client.
		s.deleteClientTokensLocked(req.UserID, req.ClientID)
	}
	notices := s.endSessionsLocked(sids)
	s.stats.EndSessions++
	s.mu.Unlock()

	if b := browserFrom(ctx); b != nil && b.clear != nil {
		b.clear()
	}
	_ = s.sendLogoutNotices(ctx, notices)

	if req.RedirectURI == "" {
		return s.loggedOutURL, nil
	}
	return req.RedirectURI, nil
}

// endUserSessions ends every OP session of the user, as an administrator
// would, and notifies the clients over the back channel.
func (s *storage) endUserSessions(ctx context.Context, sub string) error {
	if s.user(sub) == nil {
		return fmt.Errorf("user %q: %w", sub, errNotFound)
	}
	s.mu.Lock()
	sids := make(map[string]bool)
	for id, sess := range s.sessions {
		if sess.userID == sub {
			sids[id] = true
		}
	}
	notices := s.endSessionsLocked(sids)
	s.mu.Unlock()
	return s.sendLogoutNotices(ctx, notices)
}
