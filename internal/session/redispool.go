package session

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
)

// RedisOptions configure the Redis connection pool shared by the Backend
// (NewRedis) and the scs cookie store (NewRedisCookieStore). Every zero
// field gets the default named, the same defaults as internal/config.
type RedisOptions struct {
	// URL is redis://[[user]:password@]host[:port][/db], or rediss:// for
	// TLS (the server name is checked against host). The port defaults to
	// 6379, the database to 0. Required.
	URL string
	// KeyPrefix namespaces every key (default "bff:" in the configuration).
	// NewRedisPool does not use it: pass it to NewRedis and
	// NewRedisCookieStore. It should not contain glob characters (*?[), which
	// scs's redisstore.All would misread.
	KeyPrefix string
	// PoolSize is the maximum number of connections, open or idle; default
	// 32. A Backend call waits for a free connection at most 1s.
	PoolSize int
	// DialTimeout bounds connecting (TCP, TLS, AUTH, SELECT); default 500ms.
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for each reply; default 500ms. A caller's
	// context deadline, when earlier, wins.
	ReadTimeout time.Duration
	// WriteTimeout bounds sending each command; default 500ms.
	WriteTimeout time.Duration
}

// Pool tuning that is not configurable.
const (
	// acquireTimeout bounds taking a connection from the pool, dialing
	// included, so a Backend call fails (ErrUnavailable) within about a
	// second when Redis is down or the pool is exhausted, instead of
	// queueing requests forever behind Wait=true.
	acquireTimeout = time.Second
	// poolIdleTimeout closes connections idle for longer.
	poolIdleTimeout = 5 * time.Minute
	// pingAfterIdle: a connection idle for longer is checked with PING
	// before use (load balancers and NATs drop quiet TCP flows).
	pingAfterIdle = time.Minute
)

var redisDBPath = regexp.MustCompile(`^/[0-9]*$`)

// validateRedisURL checks raw the way redis.DialURLContext will read it, and
// more strictly: an option it would silently ignore is an error here. Its
// messages never include the password (nor the user name, which redigo
// treats as the password when alone).
func validateRedisURL(raw string) error {
	if raw == "" {
		return errors.New("session: redis URL is empty, want redis://host:port/db or rediss://host:port/db")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: say what to
		// check instead.
		return errors.New("session: redis URL cannot be parsed: check the scheme, host and port, and percent-encode special characters in the password")
	}
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss":
		return fmt.Errorf("session: redis URL scheme is %q, want redis or rediss (TLS)", u.Scheme)
	case u.Opaque != "":
		return errors.New("session: redis URL must be redis://host:port/db (missing //)")
	case u.Hostname() == "":
		return errors.New("session: redis URL has no host")
	case u.RawQuery != "" || u.ForceQuery:
		// Not echoed: it might carry a password.
		return errors.New("session: redis URL query parameters are not supported (put the password in the userinfo and the database in the path)")
	case u.Fragment != "":
		return errors.New("session: redis URL must not have a #fragment")
	case !redisDBPath.MatchString(u.Path) && u.Path != "":
		return fmt.Errorf("session: redis URL database %q is not a number (want /0 … /15)", strings.TrimPrefix(u.Path, "/"))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("session: redis URL port %q is not in 1-65535", p)
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if _, err := strconv.Atoi(db); err != nil {
			return fmt.Errorf("session: redis URL database %q is out of range", db)
		}
	}
	return nil
}

// NewRedisPool builds a redigo pool from o. It does not connect: use
// (*Redis).Ping for readiness. Connections are dialed with
// redis.DialURLContext (rediss:// for TLS, password from the userinfo, the
// database from the path: AUTH and SELECT on connect), at most PoolSize are
// open (MaxActive) and kept idle (MaxIdle), idle ones are closed after 5
// minutes and PINGed before reuse after a minute of quiet.
//
// Wait is true, so a caller queues for a free connection; Redis bounds the
// queue with pool.GetContext and a 1s deadline. scs's redisstore uses
// pool.Get (no context): its wait is bounded only by how fast connections
// come back, i.e. by the dial, read and write timeouts.
func NewRedisPool(o RedisOptions) (*redis.Pool, error) {
	if err := validateRedisURL(o.URL); err != nil {
		return nil, err
	}
	if o.PoolSize < 0 || o.DialTimeout < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 {
		return nil, errors.New("session: redis pool size and timeouts must not be negative")
	}
	if o.PoolSize == 0 {
		o.PoolSize = 32
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 500 * time.Millisecond
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 500 * time.Millisecond
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 500 * time.Millisecond
	}
	rawURL := o.URL
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialURLContext(ctx, rawURL,
				redis.DialConnectTimeout(o.DialTimeout),
				redis.DialReadTimeout(o.ReadTimeout),
				redis.DialWriteTimeout(o.WriteTimeout),
			)
		},
		MaxActive:   o.PoolSize,
		MaxIdle:     o.PoolSize,
		Wait:        true,
		IdleTimeout: poolIdleTimeout,
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, lastUsed time.Time) error {
			if time.Since(lastUsed) < pingAfterIdle {
				return nil
			}
			_, err := redis.DoContext(c, ctx, "PING")
			return err
		},
	}, nil
}

// NewRedisCookieStore returns the scs store for the cookie → record ID
// mapping, under keyPrefix+"scs:" (redisstore: GET, MULTI/SET/PEXPIREAT/EXEC,
// DEL). It shares the pool with NewRedis. redisstore is not context-aware;
// see NewRedisPool for how its calls are bounded.
func NewRedisCookieStore(pool *redis.Pool, keyPrefix string) scs.Store {
	return redisstore.NewWithPrefix(pool, keyPrefix+"scs:")
}
