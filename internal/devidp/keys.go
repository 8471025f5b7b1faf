package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// maxRetiredKeys bounds how many rotated-out keys are kept for the
// provider's own verification of id_token_hint and access tokens.
const maxRetiredKeys = 8

// signingKey is an RSA-2048 key used with RS256. It implements op.SigningKey.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &signingKey{id: rand.Text(), key: key}, nil
}

// SignatureAlgorithm implements op.SigningKey.
func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }

// Key implements op.SigningKey: the private key.
func (k *signingKey) Key() any { return k.key }

// ID implements op.SigningKey: the kid.
func (k *signingKey) ID() string { return k.id }

// publicKey is the public half of a signingKey. It implements op.Key.
type publicKey struct{ k *signingKey }

// ID implements op.Key.
func (p publicKey) ID() string { return p.k.id }

// Algorithm implements op.Key.
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }

// Use implements op.Key.
func (p publicKey) Use() string { return oidc.KeyUseSignature }

// Key implements op.Key.
func (p publicKey) Key() any { return &p.k.key.PublicKey }

// SigningKey implements op.Storage: the active key.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.activeKey, nil
}

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.Storage and is served at /keys: only the active key.
// After RotateKey the old key is gone from the JWKS at once, so a relying
// party must refetch the JWKS when it meets an unknown kid.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []op.Key{publicKey{s.activeKey}}, nil
}

// rotateKey makes key the active signing key and retires the old one.
func (s *storage) rotateKey(key *signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retiredKeys = append([]*signingKey{s.activeKey}, s.retiredKeys...)
	if len(s.retiredKeys) > maxRetiredKeys {
		s.retiredKeys = s.retiredKeys[:maxRetiredKeys]
	}
	s.activeKey = key
}

// verificationKeySet is the oidc.KeySet the provider itself uses to verify
// id_token_hint at /end_session and access tokens at /userinfo and /revoke.
// Unlike /keys it also knows the retired keys, so that a relying party can
// still log out with an ID token issued before RotateKey (as ZITADEL keeps
// verifying with keys it no longer signs with).
type verificationKeySet struct{ s *storage }

// VerifySignature implements oidc.KeySet.
func (v verificationKeySet) VerifySignature(_ context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, errors.New("expected exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	v.s.mu.Lock()
	keys := append([]*signingKey{v.s.activeKey}, v.s.retiredKeys...)
	v.s.mu.Unlock()
	for _, k := range keys {
		if kid == "" || kid == k.id {
			if payload, err := jws.Verify(&k.key.PublicKey); err == nil {
				return payload, nil
			}
		}
	}
	return nil, fmt.Errorf("no key verifies the signature (kid %q)", kid)
}
