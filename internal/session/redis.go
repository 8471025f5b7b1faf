package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Redis is the Backend for several replicas, on Redis ≥ 6.2 (GETDEL; older
// servers fall back to a script). Keys, all under the prefix:
//
//	rec:{id}    HASH v (version), s (seen, Unix seconds), d (sealed data); PEXPIRE
//	idx:{key}   SET of record IDs; PEXPIRE only ever extended
//	val:{key}   STRING, a one-time value (SET NX PX, GETDEL)
//	lock:{key}  STRING, the holder's random token (SET NX PX)
//
// Writes that read first (Create, Update, Touch, IndexAdd, unlock) are Lua
// scripts (EVALSHA, EVAL on NOSCRIPT), so they are atomic on the server.
//
// Every call takes a connection with pool.GetContext (waiting at most 1s)
// and runs with redis.DoContext, so the caller's cancellation and deadline
// apply. Connection and I/O failures, and server replies that mean "not
// now" (LOADING, BUSY, READONLY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN,
// NOREPLICAS), are
// returned wrapping ErrUnavailable; the context's error, if any, is wrapped
// too.
type Redis struct {
	pool   *redis.Pool
	prefix string
	// noGetDel is set once the server answered GETDEL with "unknown command".
	noGetDel atomic.Bool
}

// NewRedis returns a Backend over pool with every key under keyPrefix.
func NewRedis(pool *redis.Pool, keyPrefix string) *Redis {
	return &Redis{pool: pool, prefix: keyPrefix}
}

var _ Backend = (*Redis)(nil)

func (r *Redis) recKey(id string) string   { return r.prefix + "rec:" + id }
func (r *Redis) idxKey(key string) string  { return r.prefix + "idx:" + key }
func (r *Redis) onceKey(key string) string { return r.prefix + "val:" + key }
func (r *Redis) lockKey(key string) string { return r.prefix + "lock:" + key }

// Scripts. A redis.Script holds only its source and SHA-1: immutable.
var (
	// KEYS[1] record; ARGV version, seen, data, ttl ms. 1 created, 0 taken.
	createScript = redis.NewScript(1, `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

	// KEYS[1] record; ARGV prev, seen, data, ttl ms. 1 updated, 0 version
	// changed (conflict), -1 no record or no integer version (not found,
	// as Get would say).
	updateScript = redis.NewScript(1, `
local v = redis.call('HGET', KEYS[1], 'v')
if not v or not string.match(v, '^%-?%d+$') then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'd', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)

	// KEYS[1] record; ARGV seen, ttl ms. 1 touched, 0 no record.
	touchScript = redis.NewScript(1, `
if redis.call('HEXISTS', KEYS[1], 'v') == 0 then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

	// KEYS[1] set; ARGV member, ttl ms. The TTL only grows: PTTL is -1 for
	// a set that was just created (no TTL yet).
	indexAddScript = redis.NewScript(1, `
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`)

	// KEYS[1] value. GET + DEL for servers without GETDEL (< 6.2).
	takeScript = redis.NewScript(1, `
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v`)

	// KEYS[1] lock; ARGV token. Deletes only the caller's own lock.
	unlockScript = redis.NewScript(1, `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// conn takes a connection, waiting (dial included) at most acquireTimeout.
func (r *Redis) conn(ctx context.Context, op string) (redis.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	defer cancel()
	c, err := r.pool.GetContext(actx)
	if err != nil {
		// Whatever failed while connecting (refused, timeout, TLS,
		// WRONGPASS): the store is unusable now.
		return nil, fmt.Errorf("%w: redis %s: connect: %w", ErrUnavailable, op, err)
	}
	return c, nil
}

// transientReplies are server error replies that mean "try later".
var transientReplies = []string{"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS"}

// redisError wraps a failed command: ErrUnavailable unless the server
// answered with a definite error (wrong type, bad argument).
func redisError(op string, err error) error {
	var reply redis.Error
	if errors.As(err, &reply) {
		code, _, _ := strings.Cut(string(reply), " ")
		for _, t := range transientReplies {
			if code == t {
				return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
			}
		}
		return fmt.Errorf("session: redis %s: %w", op, err)
	}
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// millis converts a TTL for PEXPIRE/PX, rounding up to 1ms.
func millis(op string, d time.Duration) (int64, error) {
	if d <= 0 {
		return 0, fmt.Errorf("session: redis %s: ttl %v is not positive", op, d)
	}
	return max(d.Milliseconds(), 1), nil
}

// Get implements Backend with HGETALL. A record missing a field or holding
// a non-numeric version or seen (a half-written or foreign key) is reported
// as not found: the error wraps ErrNotFound.
func (r *Redis) Get(ctx context.Context, id string) (Stored, error) {
	c, err := r.conn(ctx, "HGETALL")
	if err != nil {
		return Stored{}, err
	}
	defer c.Close()
	m, err := redis.StringMap(redis.DoContext(c, ctx, "HGETALL", r.recKey(id)))
	if err != nil {
		return Stored{}, redisError("HGETALL", err)
	}
	if len(m) == 0 {
		return Stored{}, ErrNotFound
	}
	var s Stored
	v, okV := m["v"]
	seen, okS := m["s"]
	d, okD := m["d"]
	if !okV || !okS || !okD {
		return Stored{}, fmt.Errorf("%w: redis record is incomplete (fields v, s and d are required)", ErrNotFound)
	}
	if s.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
		return Stored{}, fmt.Errorf("%w: redis record version is not an integer", ErrNotFound)
	}
	if s.Seen, err = strconv.ParseInt(seen, 10, 64); err != nil {
		return Stored{}, fmt.Errorf("%w: redis record seen time is not an integer", ErrNotFound)
	}
	s.Data = []byte(d)
	return s, nil
}

// Create implements Backend: a script does EXISTS, HSET v s d and PEXPIRE,
// so two creators of one id cannot both win.
func (r *Redis) Create(ctx context.Context, id string, s Stored, ttl time.Duration) error {
	ms, err := millis("create", ttl)
	if err != nil {
		return err
	}
	c, err := r.conn(ctx, "create")
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := redis.Int(createScript.DoContext(ctx, c, r.recKey(id), s.Version, s.Seen, s.Data, ms))
	if err != nil {
		return redisError("create", err)
	}
	if n == 0 {
		return ErrExists
	}
	return nil
}

// Update implements Backend: a script compares v with prev (HGET), then
// HSET s d, HINCRBY v 1 and PEXPIRE. A record without an integer v is not
// found.
func (r *Redis) Update(ctx context.Context, id string, prev int64, s Stored, ttl time.Duration) error {
	ms, err := millis("update", ttl)
	if err != nil {
		return err
	}
	c, err := r.conn(ctx, "update")
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := redis.Int(updateScript.DoContext(ctx, c, r.recKey(id), prev, s.Seen, s.Data, ms))
	if err != nil {
		return redisError("update", err)
	}
	switch n {
	case 1:
		return nil
	case 0:
		return ErrConflict
	default:
		return ErrNotFound
	}
}

// Touch implements Backend: a script sets s and PEXPIRE only if the record
// exists (HEXISTS v), so a Touch racing a Delete cannot resurrect it.
func (r *Redis) Touch(ctx context.Context, id string, seen int64, ttl time.Duration) error {
	ms, err := millis("touch", ttl)
	if err != nil {
		return err
	}
	c, err := r.conn(ctx, "touch")
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := redis.Int(touchScript.DoContext(ctx, c, r.recKey(id), seen, ms))
	if err != nil {
		return redisError("touch", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete implements Backend with DEL; deleting a missing record is not an
// error.
func (r *Redis) Delete(ctx context.Context, id string) error {
	return r.simple(ctx, "DEL", r.recKey(id))
}

// simple runs one command whose reply does not matter.
func (r *Redis) simple(ctx context.Context, cmd string, args ...any) error {
	c, err := r.conn(ctx, cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := redis.DoContext(c, ctx, cmd, args...); err != nil {
		return redisError(cmd, err)
	}
	return nil
}

// IndexAdd implements Backend: a script does SADD, then PEXPIRE if the
// set's PTTL is shorter than ttl.
func (r *Redis) IndexAdd(ctx context.Context, key, id string, ttl time.Duration) error {
	ms, err := millis("index add", ttl)
	if err != nil {
		return err
	}
	c, err := r.conn(ctx, "index add")
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := indexAddScript.DoContext(ctx, c, r.idxKey(key), id, ms); err != nil {
		return redisError("index add", err)
	}
	return nil
}

// IndexMembers implements Backend with SMEMBERS.
func (r *Redis) IndexMembers(ctx context.Context, key string) ([]string, error) {
	c, err := r.conn(ctx, "SMEMBERS")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ids, err := redis.Strings(redis.DoContext(c, ctx, "SMEMBERS", r.idxKey(key)))
	if err != nil {
		return nil, redisError("SMEMBERS", err)
	}
	return ids, nil
}

// IndexRemove implements Backend with SREM (Redis deletes an emptied set).
func (r *Redis) IndexRemove(ctx context.Context, key, id string) error {
	return r.simple(ctx, "SREM", r.idxKey(key), id)
}

// PutOnce implements Backend with SET key value NX PX ttl.
func (r *Redis) PutOnce(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ms, err := millis("SET NX", ttl)
	if err != nil {
		return err
	}
	c, err := r.conn(ctx, "SET NX")
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = redis.String(redis.DoContext(c, ctx, "SET", r.onceKey(key), value, "NX", "PX", ms))
	if errors.Is(err, redis.ErrNil) {
		return ErrExists
	}
	if err != nil {
		return redisError("SET NX", err)
	}
	return nil
}

// Take implements Backend with GETDEL (Redis ≥ 6.2), or a GET+DEL script
// once the server has said it does not know GETDEL.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	c, err := r.conn(ctx, "GETDEL")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	k := r.onceKey(key)
	var v []byte
	if !r.noGetDel.Load() {
		v, err = redis.Bytes(redis.DoContext(c, ctx, "GETDEL", k))
		var reply redis.Error
		if errors.As(err, &reply) && strings.HasPrefix(strings.ToLower(string(reply)), "err unknown command") {
			r.noGetDel.Store(true)
		}
	}
	if r.noGetDel.Load() {
		v, err = redis.Bytes(takeScript.DoContext(ctx, c, k))
	}
	if errors.Is(err, redis.ErrNil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, redisError("GETDEL", err)
	}
	return v, nil
}

// Lock implements Backend with SET key token NX PX lease, token being 128
// random bits. unlock runs a compare-and-delete script (GET, DEL) so it
// never releases a lock that expired and was taken by someone else; it is
// idempotent, bounded by 1s and ignores errors (the lease ends anyway).
func (r *Redis) Lock(ctx context.Context, key string, lease time.Duration) (func(), error) {
	ms, err := millis("lock", lease)
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("session: lock token: %w", err)
	}
	token := hex.EncodeToString(tok)
	k := r.lockKey(key)
	c, err := r.conn(ctx, "lock")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_, err = redis.String(redis.DoContext(c, ctx, "SET", k, token, "NX", "PX", ms))
	if errors.Is(err, redis.ErrNil) {
		return nil, ErrConflict
	}
	if err != nil {
		return nil, redisError("lock", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			uctx, cancel := context.WithTimeout(context.Background(), acquireTimeout)
			defer cancel()
			c, err := r.conn(uctx, "unlock")
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = unlockScript.DoContext(uctx, c, k, token)
		})
	}, nil
}

// Ping implements Backend with PING.
func (r *Redis) Ping(ctx context.Context) error {
	return r.simple(ctx, "PING")
}
