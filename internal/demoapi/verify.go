package demoapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
)

// keyFetchTimeout bounds a JWKS fetch made while verifying a signature.
const keyFetchTimeout = 10 * time.Second

// rolesClaim is ZITADEL's claim with the roles of the requesting client's
// project, shaped {"<roleKey>": {"<orgId>": "<orgDomain>"}}.
const rolesClaim = "urn:zitadel:iam:org:project:roles"

// verifyError is a token that does not verify. msg is safe to send to the
// client (it never contains the token); err is for the log.
type verifyError struct {
	msg string
	err error
}

func (e *verifyError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *verifyError) Unwrap() error { return e.err }

func invalid(msg string, err error) error { return &verifyError{msg: msg, err: err} }

// verify checks a JWT access token: signature with a key from the provider's
// JWKS and an accepted algorithm, exact issuer, exp, nbf and iat within
// Leeway, a subject, and the audience when one is configured. A *verifyError
// means the token is bad (401); any other error means the provider could not
// be reached (503).
func (h *Handler) verify(ctx context.Context, raw string) (*zoidc.AccessTokenClaims, error) {
	k, err := h.provider.load(ctx)
	if err != nil {
		return nil, err
	}

	claims := new(zoidc.AccessTokenClaims)
	payload, err := zoidc.ParseToken(raw, claims)
	if err != nil {
		return nil, invalid("malformed token", err)
	}

	// Checked before the signature so that a foreign token costs no JWKS
	// fetch. Exact comparison: zoidc.CheckIssuer is a deprecated no-op.
	if claims.Issuer != k.issuer {
		return nil, invalid("issuer does not match", fmt.Errorf("got iss %q, want %q", claims.Issuer, k.issuer))
	}

	// The remote key set binds its in-flight JWKS fetch to the first
	// caller's ctx; detach it so one client going away cannot fail the
	// fetch for the others, and bound it instead.
	keyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyFetchTimeout)
	defer cancel()
	if err := zoidc.CheckSignature(keyCtx, raw, payload, claims, k.algs, k.set); err != nil {
		if errors.Is(err, zoidc.ErrSignatureUnsupportedAlg) {
			return nil, invalid("signature algorithm not accepted", err)
		}
		return nil, invalid("signature is invalid", err)
	}

	now := h.now()
	exp := claims.GetExpiration()
	switch {
	case exp.IsZero():
		return nil, invalid("token has no exp", nil)
	case !now.Before(exp.Add(Leeway)):
		return nil, invalid("token has expired", fmt.Errorf("exp %s, now %s", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if nbf := claims.NotBefore.AsTime(); !nbf.IsZero() && nbf.After(now.Add(Leeway)) {
		return nil, invalid("token is not valid yet", fmt.Errorf("nbf %s, now %s", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if iat := claims.GetIssuedAt(); !iat.IsZero() && iat.After(now.Add(Leeway)) {
		return nil, invalid("token was issued in the future", fmt.Errorf("iat %s, now %s", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if claims.Subject == "" {
		return nil, invalid("token has no sub", nil)
	}
	// An ID token is not an access token, even when its audience matches
	// (with ZITADEL it often does): refuse the claims only ID tokens carry.
	for _, idOnly := range []string{"nonce", "at_hash", "c_hash"} {
		if _, ok := claims.Claims[idOnly]; ok {
			return nil, invalid("an ID token is not an access token", fmt.Errorf("claim %s present", idOnly))
		}
	}
	if h.audience != "" && !slices.Contains(claims.Audience, h.audience) {
		return nil, invalid("audience does not match", fmt.Errorf("aud %q does not contain %q", []string(claims.Audience), h.audience))
	}
	return claims, nil
}

// roles returns the sorted role keys of ZITADEL's project roles claim, and
// of the per-project claims urn:zitadel:iam:org:project:{projectId}:roles.
func roles(claims map[string]any) []string {
	out := []string{}
	for name, value := range claims {
		if name != rolesClaim && !isProjectRolesClaim(name) {
			continue
		}
		m, ok := value.(map[string]any)
		if !ok {
			continue
		}
		for role := range m {
			out = append(out, role)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func isProjectRolesClaim(name string) bool {
	id, ok := strings.CutPrefix(name, "urn:zitadel:iam:org:project:")
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, ":roles")
	return ok && id != "" && !strings.Contains(id, ":")
}
