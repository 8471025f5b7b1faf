package oidc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
)

// BackChannelLogoutEvent is the events member a logout token must carry
// (OIDC Back-Channel Logout 1.0 §2.4).
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutTokenSize bounds the token before any parsing.
const maxLogoutTokenSize = 16 << 10

// LogoutToken is a verified back-channel logout token.
type LogoutToken struct {
	Subject string
	SID     string
	JTI     string
	Expiry  time.Time
}

// VerifyLogoutToken validates a back-channel logout token per OIDC
// Back-Channel Logout 1.0 §2.6: signature by a key from the provider's JWKS
// with an algorithm from discovery, iss, aud contains the client, iat not in
// the future and exp not passed (ClockSkew leeway), the back-channel
// logout event, sid or sub present, no nonce, and a jti. The caller checks
// that the jti was not seen before. The typ header is not required to be
// logout+jwt: ZITADEL sends "JWT".
func (c *Client) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	relying, err := c.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if raw == "" || len(raw) > maxLogoutTokenSize {
		return nil, fmt.Errorf("%w: logout_token missing or too large", ErrInvalidToken)
	}
	var claims zoidc.LogoutTokenClaims
	payload, err := zoidc.ParseToken(raw, &claims)
	if err != nil {
		return nil, fmt.Errorf("%w: logout_token: %w", ErrInvalidToken, err)
	}
	v := relying.IDTokenVerifier()
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.HTTPClient.Timeout+time.Second)
	defer cancel()
	if err := zoidc.CheckSignature(vctx, raw, payload, sigAlg{}, v.SupportedSignAlgs, v.KeySet); err != nil {
		return nil, fmt.Errorf("%w: logout_token: %w", ErrInvalidToken, err)
	}
	now := c.cfg.Now()
	var problems []error
	check := func(ok bool, what string) {
		if !ok {
			problems = append(problems, errors.New(what))
		}
	}
	check(claims.Issuer == c.cfg.Issuer, "iss does not match the issuer")
	check(slices.Contains(claims.Audience, c.cfg.ClientID), "aud does not contain the client")
	check(!claims.IssuedAt.AsTime().IsZero(), "iat missing")
	check(!claims.IssuedAt.AsTime().After(now.Add(c.cfg.ClockSkew)), "iat in the future")
	check(!claims.Expiration.AsTime().IsZero(), "exp missing")
	check(now.Add(-c.cfg.ClockSkew).Before(claims.Expiration.AsTime()), "expired")
	_, hasEvent := claims.Events[BackChannelLogoutEvent]
	check(hasEvent, "events lacks the back-channel logout event")
	check(claims.Subject != "" || claims.SessionID != "", "neither sid nor sub")
	_, hasNonce := claims.Claims["nonce"]
	check(!hasNonce, "nonce is forbidden in a logout token")
	check(claims.JWTID != "", "jti missing")
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: logout_token: %w", ErrInvalidToken, errors.Join(problems...))
	}
	return &LogoutToken{Subject: claims.Subject, SID: claims.SessionID, JTI: claims.JWTID, Expiry: claims.Expiration.AsTime()}, nil
}

// sigAlg satisfies zoidc.ClaimsSignature for CheckSignature.
type sigAlg struct{}

func (sigAlg) SetSignatureAlgorithm(jose.SignatureAlgorithm) {}
