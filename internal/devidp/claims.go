package devidp

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// SetUserinfoFromScopes implements op.Storage. It is deprecated in the
// library and intentionally empty: SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest and runs
// for every ID token, refreshed ones included. It sets sub, the profile and
// email claims the scopes ask for, the roles claims (always, as if the
// ZITADEL project asserted roles on authentication), and sid. On a refresh
// it repeats the login's nonce like ZITADEL does, unless
// Config.OmitNonceOnRefresh is set.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u := s.user(req.GetSubject())
	if u == nil {
		return fmt.Errorf("user %q: %w", req.GetSubject(), errNotFound)
	}
	u.setUserinfo(info, scopes)
	for k, v := range u.roleClaims(s.projectID) {
		info.AppendClaims(k, v)
	}
	switch r := req.(type) {
	case *authRequest:
		info.AppendClaims("sid", r.sid)
	case *refreshTokenRequest:
		info.AppendClaims("sid", r.rt.sid)
		if r.rt.nonce != "" && !s.omitNonceOnRefresh {
			// op.CreateIDToken only takes the nonce from an AuthRequest;
			// the registered claim is empty here, so this one is kept.
			info.AppendClaims("nonce", r.rt.nonce)
		}
	}
	return nil
}

// SetUserinfoFromToken implements op.Storage for /userinfo: the claims of
// the token's scopes and the roles, for an access token that is neither
// expired nor revoked.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(tokenID, subject)
	if err != nil {
		return err
	}
	u := s.user(at.userID)
	if u == nil {
		return fmt.Errorf("user %q: %w", at.userID, errNotFound)
	}
	u.setUserinfo(info, at.scopes)
	for k, v := range u.roleClaims(s.projectID) {
		info.AppendClaims(k, v)
	}
	return nil
}

// SetIntrospectionFromToken implements op.Storage for /oauth/introspect.
// Every registered client belongs to the one project, so any of them may
// introspect any live access token (ZITADEL lets the project's API
// applications do so); the answer carries the userinfo claims, scope,
// client_id, aud, exp and sid.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	if _, ok := s.clients[clientID]; !ok {
		return errors.New("introspecting client is unknown")
	}
	at, err := s.liveAccessToken(tokenID, subject)
	if err != nil {
		return err
	}
	u := s.user(at.userID)
	if u == nil {
		return fmt.Errorf("user %q: %w", at.userID, errNotFound)
	}
	info := new(oidc.UserInfo)
	u.setUserinfo(info, at.scopes)
	for k, v := range u.roleClaims(s.projectID) {
		info.AppendClaims(k, v)
	}
	info.AppendClaims("sid", at.sid)
	resp.SetUserInfo(info)
	resp.Scope = at.scopes
	resp.ClientID = at.clientID
	resp.Audience = at.audience
	resp.Expiration = oidc.FromTime(at.expires)
	resp.Issuer = s.issuer
	resp.JWTID = at.id
	resp.TokenType = oidc.BearerToken
	return nil
}

// liveAccessToken returns a copy of an unexpired, unrevoked access token.
func (s *storage) liveAccessToken(tokenID, subject string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.accessTokens[tokenID]
	if !ok || s.now().After(at.expires) || at.userID != subject {
		return accessToken{}, fmt.Errorf("access token: %w", errNotFound)
	}
	return *at, nil
}

// GetPrivateClaimsFromScopes implements op.Storage. The library calls
// GetPrivateClaimsFromRequest instead; this is the same minus sid.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	u := s.user(userID)
	if u == nil {
		return nil, fmt.Errorf("user %q: %w", userID, errNotFound)
	}
	return u.roleClaims(s.projectID), nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// the extra claims of a JWT access token are the roles and sid.
func (s *storage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, scopes []string) (map[string]any, error) {
	claims, err := s.GetPrivateClaimsFromScopes(ctx, req.GetSubject(), "", scopes)
	if err != nil {
		return nil, err
	}
	claims = maps.Clone(claims)
	switch r := req.(type) {
	case *authRequest:
		claims["sid"] = r.sid
	case *refreshTokenRequest:
		claims["sid"] = r.rt.sid
	}
	return claims, nil
}
