package devidp

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is a stored authorization request. The storage hands out
// copies, so the library may read one without holding the storage lock
// while the login form completes the stored original.
type authRequest struct {
	id            string
	created       time.Time
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	audience      []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	prompt        []string
	maxAge        *uint
	loginHint     string
	hintUserID    string // sub of a valid id_token_hint, if any
	codeChallenge *oidc.CodeChallenge

	// Set by the login (or by single sign-on from the OP session cookie).
	userID    string
	sid       string
	authTime  time.Time
	done      bool
	exchanged bool // the code has been redeemed
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) snapshot() *authRequest {
	c := *a
	return &c
}

// GetID implements op.AuthRequest.
func (a *authRequest) GetID() string { return a.id }

// GetACR implements op.AuthRequest.
func (a *authRequest) GetACR() string { return "" }

// GetAMR implements op.AuthRequest: a password login.
func (a *authRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}

// GetAudience implements op.AuthRequest: the client and the project.
func (a *authRequest) GetAudience() []string { return slices.Clone(a.audience) }

// GetAuthTime implements op.AuthRequest.
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }

// GetClientID implements op.AuthRequest.
func (a *authRequest) GetClientID() string { return a.clientID }

// GetCodeChallenge implements op.AuthRequest; a stored challenge makes the
// library demand the matching code_verifier at the token endpoint.
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }

// GetNonce implements op.AuthRequest.
func (a *authRequest) GetNonce() string { return a.nonce }

// GetRedirectURI implements op.AuthRequest.
func (a *authRequest) GetRedirectURI() string { return a.redirectURI }

// GetResponseType implements op.AuthRequest.
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.responseType }

// GetResponseMode implements op.AuthRequest.
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.responseMode }

// GetScopes implements op.AuthRequest.
func (a *authRequest) GetScopes() []string { return a.scopes }

// GetState implements op.AuthRequest.
func (a *authRequest) GetState() string { return a.state }

// GetSubject implements op.AuthRequest.
func (a *authRequest) GetSubject() string { return a.userID }

// Done implements op.AuthRequest.
func (a *authRequest) Done() bool { return a.done }

// accessToken is the server-side record of a JWT access token; its ID is
// the token's jti.
type accessToken struct {
	id           string
	clientID     string
	userID       string
	sid          string
	scopes       []string
	audience     []string
	refreshToken string // the refresh token issued with it, if any
	expires      time.Time
}

// refreshToken is an opaque, rotating refresh token. The token value is
// also its ID.
type refreshToken struct {
	token    string
	clientID string
	userID   string
	sid      string
	nonce    string
	authTime time.Time
	amr      []string
	scopes   []string // as granted at login; never narrowed by a refresh
	audience []string
	expires  time.Time // idle expiry, renewed by every use
}

// refreshTokenRequest implements op.RefreshTokenRequest over a copy of a
// stored refresh token. SetCurrentScopes narrows the scopes of the tokens
// about to be issued, not those of the stored refresh token.
type refreshTokenRequest struct {
	rt     refreshToken
	scopes []string
}

var _ op.RefreshTokenRequest = (*refreshTokenRequest)(nil)

// GetAMR implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAMR() []string { return r.rt.amr }

// GetAudience implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAudience() []string { return slices.Clone(r.rt.audience) }

// GetAuthTime implements op.RefreshTokenRequest: the original login time.
func (r *refreshTokenRequest) GetAuthTime() time.Time { return r.rt.authTime }

// GetClientID implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetClientID() string { return r.rt.clientID }

// GetScopes implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetScopes() []string { return r.scopes }

// GetSubject implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetSubject() string { return r.rt.userID }

// SetCurrentScopes implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }
