package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrUndecryptable is returned when no key in the ring opens a value: it was
// written with a retired key, or it is corrupt. Callers treat it as "no
// session".
var ErrUndecryptable = errors.New("session: value cannot be decrypted with any key in the ring")

const sealVersion = 1

// Keyring encrypts values at rest with AES-256-GCM (NIST SP 800-38D). The
// first key encrypts; every key decrypts, so keys rotate without logging
// anyone out: add the new key in front, remove the old one after the
// absolute session lifetime.
//
// Sealed layout: version(1) | key id(4) | nonce(12) | ciphertext+tag.
// The key id is the first 4 bytes of SHA-256(key); it names the key without
// revealing it. The caller's additional data (the session ID) binds a value
// to its record so a ciphertext cannot be moved to another session.
type Keyring struct {
	keys []ringKey
}

type ringKey struct {
	id   [4]byte
	aead cipher.AEAD
}

// NewKeyring builds a ring from 32-byte keys; the first one encrypts.
func NewKeyring(keys [][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("session: key ring is empty")
	}
	kr := &Keyring{}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("session: key %d is %d bytes, want 32", i, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i, err)
		}
		sum := sha256.Sum256(k)
		var id [4]byte
		copy(id[:], sum[:4])
		kr.keys = append(kr.keys, ringKey{id: id, aead: aead})
	}
	return kr, nil
}

// RandomKey returns a fresh 32-byte key (for the memory store when no key is
// configured: sessions do not outlive the process anyway).
func RandomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return k
}

// Seal encrypts plaintext with the first key, binding it to aad.
func (kr *Keyring) Seal(plaintext, aad []byte) []byte {
	k := kr.keys[0]
	out := make([]byte, 0, 1+4+12+len(plaintext)+16)
	out = append(out, sealVersion)
	out = append(out, k.id[:]...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts a value sealed by any key of the ring.
func (kr *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1+4+12+16 || sealed[0] != sealVersion {
		return nil, ErrUndecryptable
	}
	for _, k := range kr.keys {
		if [4]byte(sealed[1:5]) != k.id {
			continue
		}
		pt, err := k.aead.Open(nil, sealed[5:17], sealed[17:], aad)
		if err != nil {
			continue // another key may share the 4-byte ID
		}
		return pt, nil
	}
	return nil, ErrUndecryptable
}
