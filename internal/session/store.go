package session

import (
	"context"
	"errors"
	"time"
)

// Errors returned by a Backend.
var (
	// ErrNotFound: no such record, value or index.
	ErrNotFound = errors.New("session: not found")
	// ErrConflict: the record changed since it was read (compare-and-set lost).
	ErrConflict = errors.New("session: record changed concurrently")
	// ErrExists: a one-time value was already set (replay).
	ErrExists = errors.New("session: already exists")
	// ErrUnavailable wraps a store that cannot be reached (Redis down); the
	// server answers 503 and keeps the session.
	ErrUnavailable = errors.New("session: store unavailable")
)

// Stored is a session record as the Backend sees it: opaque sealed data plus
// the two fields the store itself must understand.
type Stored struct {
	// Version increases with every Update; Update succeeds only if the
	// stored version equals the caller's.
	Version int64
	// Seen is the last activity (Unix seconds), for the idle timeout.
	Seen int64
	// Data is the sealed record.
	Data []byte
}

// Backend keeps everything the BFF stores besides the scs cookie mapping:
// session records (tokens) under a version, secondary indexes (provider sid
// and sub → record IDs), one-time values (login transactions, logout-token
// jti) and refresh locks.
//
// Contract, checked by the conformance suite in backend_test.go for every
// implementation:
//   - Create fails with ErrExists if id is taken.
//   - Get returns ErrNotFound for a missing or expired record.
//   - Update writes only if the stored Version equals prev, else
//     ErrConflict (ErrNotFound if the record is gone); it stores Version=prev+1.
//   - Touch sets Seen and the TTL without changing Version or Data.
//   - PutOnce fails with ErrExists if key is live; Take returns and deletes
//     atomically, so a value is taken at most once.
//   - Lock returns ErrConflict while another holder's lease is live.
//   - Every call honours ctx and returns quickly with an error wrapping
//     ErrUnavailable when the store is down.
type Backend interface {
	Get(ctx context.Context, id string) (Stored, error)
	Create(ctx context.Context, id string, s Stored, ttl time.Duration) error
	Update(ctx context.Context, id string, prev int64, s Stored, ttl time.Duration) error
	Touch(ctx context.Context, id string, seen int64, ttl time.Duration) error
	Delete(ctx context.Context, id string) error

	// IndexAdd adds id to the set at key, extending the set's TTL to at least ttl.
	IndexAdd(ctx context.Context, key, id string, ttl time.Duration) error
	// IndexMembers lists the set at key (empty when missing).
	IndexMembers(ctx context.Context, key string) ([]string, error)
	// IndexRemove removes id from the set at key.
	IndexRemove(ctx context.Context, key, id string) error

	PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Take(ctx context.Context, key string) ([]byte, error)

	// Lock takes key for lease; unlock releases it only if still held by
	// this caller.
	Lock(ctx context.Context, key string, lease time.Duration) (unlock func(), err error)

	// Ping reports whether the store is reachable (readiness).
	Ping(ctx context.Context) error
}
