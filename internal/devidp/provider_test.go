package devidp

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

func TestDiscovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var d oidc.DiscoveryConfiguration
	getJSON(t, e.p.Issuer()+oidc.DiscoveryEndpoint, &d)

	checks := []struct {
		name string
		ok   bool
	}{
		{"issuer", d.Issuer == e.p.Issuer()},
		{"authorization_endpoint", d.AuthorizationEndpoint == e.p.Issuer()+"/authorize"},
		{"token_endpoint", d.TokenEndpoint == e.p.Issuer()+"/oauth/token"},
		{"revocation_endpoint", d.RevocationEndpoint == e.p.Issuer()+"/revoke"},
		{"end_session_endpoint", d.EndSessionEndpoint == e.p.Issuer()+"/end_session"},
		{"jwks_uri", d.JwksURI == e.p.Issuer()+"/keys"},
		{"userinfo_endpoint", d.UserinfoEndpoint == e.p.Issuer()+"/userinfo"},
		{"backchannel_logout_supported", d.BackChannelLogoutSupported},
		{"backchannel_logout_session_supported", d.BackChannelLogoutSessionSupported},
		{"code_challenge_methods_supported S256", slices.Contains(d.CodeChallengeMethodsSupported, oidc.CodeChallengeMethodS256)},
		{"grant_types_supported refresh_token", slices.Contains(d.GrantTypesSupported, oidc.GrantTypeRefreshToken)},
		{"token_endpoint_auth_methods basic", slices.Contains(d.TokenEndpointAuthMethodsSupported, oidc.AuthMethodBasic)},
		{"token_endpoint_auth_methods post", slices.Contains(d.TokenEndpointAuthMethodsSupported, oidc.AuthMethodPost)},
		{"scopes_supported offline_access", slices.Contains(d.ScopesSupported, oidc.ScopeOfflineAccess)},
		{"id_token_signing_alg RS256", slices.Contains(d.IDTokenSigningAlgValuesSupported, "RS256")},
		{"claims_supported sid", slices.Contains(d.ClaimsSupported, "sid")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("discovery %s wrong: %+v", c.name, d)
		}
	}
}

func TestZitadelScopesAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	scopes := append(slices.Clone(testScopes), "urn:zitadel:iam:org:project:id:"+DefaultProjectID+":aud", "urn:zitadel:iam:org:projects:roles")
	r := e.newRP(t, testClientID, testSecret, scopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
	got, _ := tokens.Extra("scope").(string)
	for _, s := range scopes {
		if !strings.Contains(got, s) {
			t.Errorf("granted scope %q lacks %q", got, s)
		}
	}
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	browser := newBrowser(t)
	before := loginAndExchange(t, browser, r, "alice", "alice")

	kids := func() []string {
		var set jose.JSONWebKeySet
		getJSON(t, e.p.Issuer()+"/keys", &set)
		var ids []string
		for _, k := range set.Keys {
			ids = append(ids, k.KeyID)
		}
		return ids
	}
	old := kids()
	if len(old) != 1 {
		t.Fatalf("/keys has %d keys, want 1", len(old))
	}
	if err := e.p.RotateKey(); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	now := kids()
	if len(now) != 1 || now[0] == old[0] {
		t.Fatalf("kids after rotation = %v, before %v; want one new kid", now, old)
	}
	after := loginAndExchange(t, newBrowser(t), r, "bob", "bob")
	header, _ := e.verifyJWT(t, after.IDToken)
	if header.KeyID != now[0] {
		t.Errorf("new ID token kid = %q, want %q", header.KeyID, now[0])
	}
	// The old ID token is still accepted as id_token_hint.
	resp := endSession(t, browser, e.p.Issuer(), url.Values{"id_token_hint": {before.IDToken}, "post_logout_redirect_uri": {testPostLogout}})
	if resp.StatusCode != http.StatusFound {
		t.Errorf("end_session with a hint signed by the retired key: status %d, want 302", resp.StatusCode)
	}
	if len(e.recv.received()) != 1 {
		t.Errorf("received %d logout tokens, want 1", len(e.recv.received()))
	}
}

func TestEndSessionByCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	browser := newBrowser(t)
	tokens := loginAndExchange(t, browser, r, "alice", "alice")

	// No id_token_hint: the OP session cookie says who is logging out.
	resp := endSession(t, browser, e.p.Issuer(), url.Values{"client_id": {testClientID}, "post_logout_redirect_uri": {testPostLogout}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != testPostLogout {
		t.Fatalf("end_session: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if status, _ := e.postToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}}); status != http.StatusBadRequest {
		t.Errorf("refresh after cookie logout: status %d, want 400", status)
	}
	if len(e.recv.received()) != 1 {
		t.Errorf("received %d logout tokens, want 1", len(e.recv.received()))
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	good := Client{ID: "c", Secret: "s", RedirectURIs: []string{"http://localhost/cb"}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{"missing issuer", Config{Clients: []Client{good}}, []string{"Issuer is required"}},
		{"trailing slash", Config{Issuer: "http://localhost:9998/", Clients: []Client{good}}, []string{"slash"}},
		{"bad scheme", Config{Issuer: "ftp://localhost", Clients: []Client{good}}, []string{"scheme"}},
		{"no clients", Config{Issuer: "http://localhost:9998"}, []string{"at least one client"}},
		{"several at once", Config{
			Issuer: "http://localhost:9998",
			Clients: []Client{
				{ID: "c", RedirectURIs: []string{"/relative"}, BackChannelLogoutURI: "mailto:x"},
				{ID: "c", Secret: "s", RedirectURIs: []string{"http://localhost/cb"}},
			},
			Users:               []User{{ID: "1", Username: "u"}, {ID: "1", Username: "u", Password: "p"}},
			AccessTokenLifetime: -time.Second,
		}, []string{"Secret is required", "must be an absolute URL", "back-channel logout URI", "duplicate ID \"c\"",
			"Password is required", "duplicate ID \"1\"", "duplicate Username", "AccessTokenLifetime"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatalf("New(%+v): no error", tc.cfg)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
	if _, err := New(Config{Issuer: "http://localhost:9998", Clients: []Client{good}}); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.newRP(t, testClientID, testSecret, testScopes)
	tokens := loginAndExchange(t, newBrowser(t), r, "alice", "alice")
	f := openLogin(t, newBrowser(t), authURL(r, "s", "n"))

	s := e.p.store
	start := time.Now()
	clock := start
	s.mu.Lock()
	s.now = func() time.Time { return clock }
	s.mu.Unlock()
	advance := func(d time.Duration) {
		s.mu.Lock()
		clock = clock.Add(d)
		s.mu.Unlock()
	}

	advance(authRequestLifetime + time.Minute)
	if _, err := s.AuthRequestByID(t.Context(), f.authRequestID); err == nil {
		t.Error("auth request still valid after 11 minutes")
	}
	advance(DefaultRefreshTokenLifetime)
	if _, err := s.TokenRequestByRefreshToken(t.Context(), tokens.RefreshToken); err == nil {
		t.Error("refresh token still valid after its idle lifetime")
	}
	// A new auth request triggers the purge.
	openLogin(t, newBrowser(t), authURL(r, "s", "n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.authRequests) != 1 || len(s.accessTokens) != 0 || len(s.refreshTokens) != 0 || len(s.sessions) != 0 {
		t.Errorf("after purge: %d auth requests, %d access tokens, %d refresh tokens, %d sessions; want 1, 0, 0, 0",
			len(s.authRequests), len(s.accessTokens), len(s.refreshTokens), len(s.sessions))
	}
}
