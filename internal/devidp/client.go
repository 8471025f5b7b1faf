package devidp

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Client is a relying party registered at the provider: a confidential web
// client that authenticates at the token, revocation and introspection
// endpoints with client_secret_basic or client_secret_post.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client_secret.
	Secret string
	// RedirectURIs are the exact redirect_uri values accepted at /authorize
	// (no wildcards). http URIs are allowed.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values
	// accepted at /end_session. Any other value is refused with
	// invalid_request, as OpenID Connect RP-Initiated Logout 1.0 section 3
	// requires.
	PostLogoutRedirectURIs []string
	// BackChannelLogoutURI is optional. When set, the provider POSTs a
	// logout token there whenever an OP session in which this client
	// received tokens ends (OpenID Connect Back-Channel Logout 1.0).
	BackChannelLogoutURI string
}

// opClient adapts a Client to op.Client.
type opClient struct {
	Client
	loginPath       string // issuer path + "/login"
	idTokenLifetime time.Duration
}

var _ op.Client = (*opClient)(nil)

// GetID implements op.Client.
func (c *opClient) GetID() string { return c.ID }

// RedirectURIs implements op.Client.
func (c *opClient) RedirectURIs() []string { return slices.Clone(c.Client.RedirectURIs) }

// PostLogoutRedirectURIs implements op.Client; op compares them exactly.
func (c *opClient) PostLogoutRedirectURIs() []string {
	return slices.Clone(c.Client.PostLogoutRedirectURIs)
}

// ApplicationType implements op.Client: a confidential web client.
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod implements op.Client. With op.Config.AuthMethodPost set, the
// library accepts the secret in the form body as well as in the
// Authorization header for a client_secret_basic client.
func (c *opClient) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }

// ResponseTypes implements op.Client: the authorization code flow only.
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// GrantTypes implements op.Client.
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

// LoginURL implements op.Client. The path includes the issuer's path, so the
// provider also works when mounted under a prefix.
func (c *opClient) LoginURL(authRequestID string) string {
	return c.loginPath + "?authRequestID=" + url.QueryEscape(authRequestID)
}

// AccessTokenType implements op.Client: JWT access tokens, as a ZITADEL
// application configured with "JWT" token type issues them.
func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

// IDTokenLifetime implements op.Client.
func (c *opClient) IDTokenLifetime() time.Duration { return c.idTokenLifetime }

// DevMode implements op.Client: it allows http redirect URIs.
func (c *opClient) DevMode() bool { return true }

// RestrictAdditionalIdTokenScopes implements op.Client (no restriction).
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// RestrictAdditionalAccessTokenScopes implements op.Client (no restriction).
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed implements op.Client. The standard scopes are always
// allowed by the library; ZITADEL's reserved scopes (urn:zitadel:iam:...)
// are allowed too, so that one relying-party configuration works against
// ZITADEL and this provider. They change nothing here: roles are always
// asserted.
func (c *opClient) IsScopeAllowed(scope string) bool {
	return strings.HasPrefix(scope, zitadelScopePrefix)
}

// IDTokenUserinfoClaimsAssertion implements op.Client: profile and email
// claims go into the ID token even though an access token is issued too.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// ClockSkew implements op.Client.
func (c *opClient) ClockSkew() time.Duration { return 0 }
