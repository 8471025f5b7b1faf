package devidp

import (
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// ZITADEL's claim names and the fixed organisation the demo roles belong to.
const (
	// RolesClaim is ZITADEL's project roles claim. Its value has the shape
	// {"<role>": {"<orgId>": "<orgDomain>"}}.
	RolesClaim = "urn:zitadel:iam:org:project:roles"

	// DemoOrgID is the organisation ID used in the roles claim.
	DemoOrgID = "bff-demo-org"

	// DemoOrgDomain is the organisation's primary domain used in the roles claim.
	DemoOrgDomain = "demo.localhost"

	// zitadelScopePrefix marks ZITADEL's reserved scopes
	// (urn:zitadel:iam:org:project:id:<id>:aud, urn:zitadel:iam:org:projects:roles, ...).
	zitadelScopePrefix = "urn:zitadel:iam:"
)

// User is a person who can sign in at the login form.
//
// Passwords are kept and compared in plain text: this provider is a
// development tool and its users are demo accounts, never real ones.
type User struct {
	// ID is the stable subject ("sub") of the user's tokens.
	ID string
	// Username is what the user types into the login form; it is also the
	// preferred_username claim.
	Username string
	// Password is the plain-text password checked by the login form.
	Password string
	// GivenName and FamilyName make up the name claims.
	GivenName, FamilyName string
	// Email is the email claim.
	Email string
	// EmailVerified is the email_verified claim.
	EmailVerified bool
	// Roles are project role keys, emitted in ZITADEL's shape under
	// RolesClaim and urn:zitadel:iam:org:project:<ProjectID>:roles.
	Roles []string
}

// DemoUsers returns the default accounts, used when Config.Users is nil:
//
//   - alice / alice: roles admin and user, Alice Admin, alice@example.com
//   - bob / bob: role user, Bob Builder, bob@example.com
//
// Their IDs are numeric strings like ZITADEL's, so that a relying party that
// confuses sub with the username shows the bug in development already.
func DemoUsers() []User {
	return []User{
		{
			ID:            "250000000000000001",
			Username:      "alice",
			Password:      "alice",
			GivenName:     "Alice",
			FamilyName:    "Admin",
			Email:         "alice@example.com",
			EmailVerified: true,
			Roles:         []string{"admin", "user"},
		},
		{
			ID:            "250000000000000002",
			Username:      "bob",
			Password:      "bob",
			GivenName:     "Bob",
			FamilyName:    "Builder",
			Email:         "bob@example.com",
			EmailVerified: true,
			Roles:         []string{"user"},
		},
	}
}

// name is the full display name.
func (u *User) name() string {
	switch {
	case u.GivenName == "":
		return u.FamilyName
	case u.FamilyName == "":
		return u.GivenName
	default:
		return u.GivenName + " " + u.FamilyName
	}
}

// rolesValue builds ZITADEL's roles claim value:
// {"<role>": {"<orgId>": "<orgDomain>"}}.
func (u *User) rolesValue() map[string]any {
	roles := make(map[string]any, len(u.Roles))
	for _, role := range u.Roles {
		roles[role] = map[string]any{DemoOrgID: DemoOrgDomain}
	}
	return roles
}

// roleClaims returns the roles under both names ZITADEL uses: the generic
// claim and the one naming the project.
func (u *User) roleClaims(projectID string) map[string]any {
	return map[string]any{
		RolesClaim: u.rolesValue(),
		"urn:zitadel:iam:org:project:" + projectID + ":roles": u.rolesValue(),
	}
}

// setUserinfo fills the standard claims the scopes ask for: sub always,
// names and preferred_username for "profile", email and email_verified for
// "email". email_verified is also emitted when false, as ZITADEL does.
func (u *User) setUserinfo(info *oidc.UserInfo, scopes []string) {
	info.Subject = u.ID
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeProfile:
			info.Name = u.name()
			info.GivenName = u.GivenName
			info.FamilyName = u.FamilyName
			info.PreferredUsername = u.Username
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.EmailVerified)
			if !u.EmailVerified {
				// The struct field is omitempty; an extra claim survives.
				info.AppendClaims("email_verified", false)
			}
		}
	}
}
