package session

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testKeyring(t *testing.T, keys ...[]byte) *Keyring {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{RandomKey()}
	}
	kr, err := NewKeyring(keys)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return kr
}

func TestNewKeyring(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keys    [][]byte
		wantErr string
	}{
		{"one key", [][]byte{RandomKey()}, ""},
		{"two keys", [][]byte{RandomKey(), RandomKey()}, ""},
		{"empty", nil, "empty"},
		{"short key", [][]byte{RandomKey(), make([]byte, 16)}, "key 1 is 16 bytes, want 32"},
		{"long key", [][]byte{make([]byte, 33)}, "key 0 is 33 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kr, err := NewKeyring(tt.keys)
			if tt.wantErr == "" {
				if err != nil || kr == nil {
					t.Fatalf("NewKeyring = %v, %v; want a ring", kr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewKeyring err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestKeyringRoundTrip(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t)
	for _, plain := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("token."), 1000)} {
		a := kr.Seal(plain, []byte("id-1"))
		b := kr.Seal(plain, []byte("id-1"))
		if bytes.Equal(a, b) {
			t.Fatalf("two seals of %d bytes are equal: the nonce is not random", len(plain))
		}
		if want := 1 + 4 + 12 + len(plain) + 16; len(a) != want {
			t.Fatalf("sealed length = %d, want %d", len(a), want)
		}
		if len(plain) >= 16 && bytes.Contains(a, plain) {
			t.Fatalf("sealed value contains the plaintext")
		}
		got, err := kr.Open(a, []byte("id-1"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, %v; want %q", got, err, plain)
		}
	}
}

func TestKeyringTamper(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t)
	aad := []byte("record-id")
	sealed := kr.Seal([]byte(`{"at":"access-token"}`), aad)
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		sealed []byte
		aad    []byte
	}{
		{"version byte", flip(0), aad},
		{"key id", flip(2), aad},
		{"nonce", flip(1 + 4 + 3), aad},
		{"ciphertext", flip(1 + 4 + 12 + 2), aad},
		{"tag", flip(len(sealed) - 1), aad},
		{"other record (AAD)", sealed, []byte("record-id2")},
		{"no AAD", sealed, nil},
		{"truncated", sealed[:len(sealed)-1], aad},
		{"header only", sealed[:1+4+12], aad},
		{"empty", nil, aad},
		{"appended byte", append(bytes.Clone(sealed), 0), aad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := kr.Open(tt.sealed, tt.aad)
			if !errors.Is(err, ErrUndecryptable) {
				t.Fatalf("Open = %q, %v; want ErrUndecryptable", got, err)
			}
		})
	}
}

func TestKeyringRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := RandomKey(), RandomKey()
	aad := []byte("id")
	oldRing := testKeyring(t, oldKey)
	rotated := testKeyring(t, newKey, oldKey)
	newOnly := testKeyring(t, newKey)
	sealedOld := oldRing.Seal([]byte("old"), aad)
	sealedRotated := rotated.Seal([]byte("new"), aad)
	tests := []struct {
		name   string
		ring   *Keyring
		sealed []byte
		want   string // "" means ErrUndecryptable
	}{
		{"old value, rotated ring", rotated, sealedOld, "old"},
		{"old value, old key removed", newOnly, sealedOld, ""},
		{"rotated ring seals with the new key", newOnly, sealedRotated, "new"},
		{"new value, old ring", oldRing, sealedRotated, ""},
		{"rotated ring opens its own", rotated, sealedRotated, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.ring.Open(tt.sealed, aad)
			if tt.want == "" {
				if !errors.Is(err, ErrUndecryptable) {
					t.Fatalf("Open = %q, %v; want ErrUndecryptable", got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Open = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
