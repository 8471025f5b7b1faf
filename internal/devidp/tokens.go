package devidp

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// CreateAccessToken implements op.Storage. It is called for a code exchange
// without offline_access.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purgeLocked(now)
	if err := s.redeemCodeLocked(ar); err != nil {
		return "", time.Time{}, err
	}
	at := s.newAccessTokenLocked(now, ar.clientID, ar.userID, ar.sid, ar.scopes, ar.audience, "")
	return at.id, at.expires, nil
}

// CreateAccessAndRefreshTokens implements op.Storage. For a code exchange
// with offline_access it issues the first refresh token of the login. For a
// refresh it rotates: the presented refresh token is deleted and a new one
// with the original scopes and a renewed idle expiry takes its place, so
// reusing the old one fails with invalid_grant (as in ZITADEL). Access
// tokens issued earlier stay valid until they expire.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.purgeLocked(now)

	var rt refreshToken
	switch r := req.(type) {
	case *authRequest:
		if err := s.redeemCodeLocked(r); err != nil {
			return "", "", time.Time{}, err
		}
		rt = refreshToken{
			clientID: r.clientID,
			userID:   r.userID,
			sid:      r.sid,
			nonce:    r.nonce,
			authTime: r.authTime,
			amr:      r.GetAMR(),
			scopes:   slices.Clone(r.scopes),
			audience: slices.Clone(r.audience),
		}
	case *refreshTokenRequest:
		old, ok := s.refreshTokens[current]
		if !ok || now.After(old.expires) || old.clientID != r.rt.clientID {
			// Lost a race with a concurrent use of the same token.
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token is invalid or has been used")
		}
		delete(s.refreshTokens, current)
		rt = *old
		rt.token = newRandomID()
		for _, at := range s.accessTokens {
			if at.refreshToken == current {
				at.refreshToken = rt.token
			}
		}
		s.stats.Refreshes++
	default:
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}

	if rt.token == "" {
		rt.token = newRandomID()
	}
	rt.expires = now.Add(s.refreshTTL)
	s.refreshTokens[rt.token] = &rt
	at := s.newAccessTokenLocked(now, rt.clientID, rt.userID, rt.sid, req.GetScopes(), rt.audience, rt.token)
	return at.id, rt.token, at.expires, nil
}

// redeemCodeLocked marks the auth request's code as used, so that two
// concurrent exchanges of one code cannot both succeed, and counts the
// exchange.
func (s *storage) redeemCodeLocked(ar *authRequest) error {
	stored, ok := s.authRequests[ar.id]
	if !ok || stored.exchanged || !stored.done {
		return oidc.ErrInvalidGrant().WithDescription("code is invalid or has been used")
	}
	stored.exchanged = true
	s.stats.CodeExchanges++
	return nil
}

// newAccessTokenLocked records an access token and notes that the client
// takes part in the OP session.
func (s *storage) newAccessTokenLocked(now time.Time, clientID, userID, sid string, scopes, audience []string, refresh string) *accessToken {
	at := &accessToken{
		id:           newRandomID(),
		clientID:     clientID,
		userID:       userID,
		sid:          sid,
		scopes:       slices.Clone(scopes),
		audience:     slices.Clone(audience),
		refreshToken: refresh,
		expires:      now.Add(s.accessTTL),
	}
	s.accessTokens[at.id] = at
	if sess, ok := s.sessions[sid]; ok {
		sess.clients[clientID] = true
	}
	return at
}

// TokenRequestByRefreshToken implements op.Storage. An unknown, expired or
// already rotated token makes the library answer invalid_grant. The
// request starts with the token's original scopes, so a refresh without a
// scope parameter keeps them.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok || s.now().After(rt.expires) {
		return nil, fmt.Errorf("refresh token: %w", errNotFound)
	}
	return &refreshTokenRequest{rt: *rt, scopes: slices.Clone(rt.scopes)}, nil
}

// GetRefreshTokenInfo implements op.Storage. The token value is its own ID.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.userID, rt.token, nil
}

// RevokeToken implements op.Storage (RFC 7009). tokenOrID is a refresh
// token or the jti of a JWT access token. Revoking a refresh token also
// revokes the access token issued with it; revoking an access token only
// affects /userinfo and /oauth/introspect, since a JWT stays verifiable
// until it expires. Unknown tokens are ignored, as section 2.2 requires.
// Stats.Revocations counts the tokens actually removed.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.accessTokens[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.accessTokens, tokenOrID)
		s.stats.Revocations++
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refreshTokens, tokenOrID)
		for id, at := range s.accessTokens {
			if at.refreshToken == tokenOrID {
				delete(s.accessTokens, id)
			}
		}
		s.stats.Revocations++
	}
	return nil
}
