package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Memory is the in-process Backend: the embedded default for one replica.
// Expired entries are dropped lazily on access and by Sweep.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	records map[string]memRecord
	indexes map[string]memIndex
	once    map[string]memValue
	locks   map[string]memValue
	cookies map[string]memValue
}

type memRecord struct {
	s   Stored
	exp time.Time
}

type memIndex struct {
	ids map[string]struct{}
	exp time.Time
}

type memValue struct {
	v   []byte
	exp time.Time
}

// NewMemory returns an empty Memory backend. now may be nil (time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:     now,
		records: map[string]memRecord{},
		indexes: map[string]memIndex{},
		once:    map[string]memValue{},
		locks:   map[string]memValue{},
		cookies: map[string]memValue{},
	}
}

func (m *Memory) live(exp time.Time) bool { return m.now().Before(exp) }

// Get implements Backend.
func (m *Memory) Get(ctx context.Context, id string) (Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok || !m.live(r.exp) {
		delete(m.records, id)
		return Stored{}, ErrNotFound
	}
	s := r.s
	s.Data = append([]byte(nil), s.Data...)
	return s, nil
}

// Create implements Backend.
func (m *Memory) Create(ctx context.Context, id string, s Stored, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.records[id]; ok && m.live(r.exp) {
		return ErrExists
	}
	s.Data = append([]byte(nil), s.Data...)
	m.records[id] = memRecord{s: s, exp: m.now().Add(ttl)}
	return nil
}

// Update implements Backend.
func (m *Memory) Update(ctx context.Context, id string, prev int64, s Stored, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok || !m.live(r.exp) {
		return ErrNotFound
	}
	if r.s.Version != prev {
		return ErrConflict
	}
	s.Version = prev + 1
	s.Data = append([]byte(nil), s.Data...)
	m.records[id] = memRecord{s: s, exp: m.now().Add(ttl)}
	return nil
}

// Touch implements Backend.
func (m *Memory) Touch(ctx context.Context, id string, seen int64, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok || !m.live(r.exp) {
		return ErrNotFound
	}
	r.s.Seen = seen
	r.exp = m.now().Add(ttl)
	m.records[id] = r
	return nil
}

// Delete implements Backend.
func (m *Memory) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, id)
	return nil
}

// IndexAdd implements Backend.
func (m *Memory) IndexAdd(ctx context.Context, key, id string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ix, ok := m.indexes[key]
	if !ok || !m.live(ix.exp) {
		ix = memIndex{ids: map[string]struct{}{}}
	}
	ix.ids[id] = struct{}{}
	if exp := m.now().Add(ttl); exp.After(ix.exp) {
		ix.exp = exp
	}
	m.indexes[key] = ix
	return nil
}

// IndexMembers implements Backend.
func (m *Memory) IndexMembers(ctx context.Context, key string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ix, ok := m.indexes[key]
	if !ok || !m.live(ix.exp) {
		delete(m.indexes, key)
		return nil, nil
	}
	out := make([]string, 0, len(ix.ids))
	for id := range ix.ids {
		out = append(out, id)
	}
	return out, nil
}

// IndexRemove implements Backend.
func (m *Memory) IndexRemove(ctx context.Context, key, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ix, ok := m.indexes[key]; ok {
		delete(ix.ids, id)
		if len(ix.ids) == 0 {
			delete(m.indexes, key)
		}
	}
	return nil
}

// PutOnce implements Backend.
func (m *Memory) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.once[key]; ok && m.live(v.exp) {
		return ErrExists
	}
	m.once[key] = memValue{v: append([]byte(nil), value...), exp: m.now().Add(ttl)}
	return nil
}

// Take implements Backend.
func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.once[key]
	delete(m.once, key)
	if !ok || !m.live(v.exp) {
		return nil, ErrNotFound
	}
	return v.v, nil
}

// Lock implements Backend.
func (m *Memory) Lock(ctx context.Context, key string, lease time.Duration) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.locks[key]; ok && m.live(l.exp) {
		return nil, ErrConflict
	}
	tok := make([]byte, 8)
	_, _ = rand.Read(tok)
	owner := hex.EncodeToString(tok)
	m.locks[key] = memValue{v: []byte(owner), exp: m.now().Add(lease)}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if l, ok := m.locks[key]; ok && string(l.v) == owner {
			delete(m.locks, key)
		}
	}, nil
}

// Ping implements Backend.
func (m *Memory) Ping(ctx context.Context) error { return nil }

// Sweep drops expired entries; the server calls it periodically so an idle
// process does not keep dead sessions in memory.
func (m *Memory) Sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	sweep(m.records, now, func(r memRecord) time.Time { return r.exp })
	sweep(m.indexes, now, func(ix memIndex) time.Time { return ix.exp })
	for _, vs := range []map[string]memValue{m.once, m.locks, m.cookies} {
		sweep(vs, now, func(v memValue) time.Time { return v.exp })
	}
}

// sweep deletes the entries of m that expired before now.
func sweep[V any](m map[string]V, now time.Time, exp func(V) time.Time) {
	for k, v := range m {
		if !now.Before(exp(v)) {
			delete(m, k)
		}
	}
}

// CookieStore returns an scs.Store kept in m and swept with it. (scs's own
// memstore runs a cleanup goroutine whose StopCleanup races with its start.)
func (m *Memory) CookieStore() *MemoryCookieStore { return &MemoryCookieStore{m: m} }

// MemoryCookieStore is the scs.Store of a Memory backend.
type MemoryCookieStore struct{ m *Memory }

// Find implements scs.Store.
func (c *MemoryCookieStore) Find(token string) ([]byte, bool, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	v, ok := c.m.cookies[token]
	if !ok || !c.m.live(v.exp) {
		return nil, false, nil
	}
	return append([]byte(nil), v.v...), true, nil
}

// Commit implements scs.Store.
func (c *MemoryCookieStore) Commit(token string, b []byte, expiry time.Time) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.m.cookies[token] = memValue{v: append([]byte(nil), b...), exp: expiry}
	return nil
}

// Delete implements scs.Store.
func (c *MemoryCookieStore) Delete(token string) error {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	delete(c.m.cookies, token)
	return nil
}
