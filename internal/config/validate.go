package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validate checks every setting, in the order of the Config struct. No
// message quotes a secret: client secrets, encryption keys and the Redis URL
// (which may carry a password) are named, never echoed.
func (c *Config) validate(p *problems) {
	if err := checkAddr(c.Listen); err != nil {
		p.add("listen", "%v", err)
	}
	if c.AdminListen != "off" {
		if err := checkAddr(c.AdminListen); err != nil {
			p.add("adminListen", "%v or \"off\"", err)
		} else if c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			p.add("adminListen", "must differ from listen (keep the admin API private)")
		} else if host, _, _ := net.SplitHostPort(c.AdminListen); !isLoopback(host) && c.AdminToken == "" {
			p.add("adminToken", "required when adminListen is not a loopback address (or BFF_ADMIN_TOKEN)")
		}
	}
	for i, cidr := range c.TrustedProxies {
		pfx, ok := parsePrefix(cidr)
		if !ok {
			p.add(fmt.Sprintf("trustedProxies[%d]", i), "not a CIDR or IP: %q", cidr)
			continue
		}
		c.trustedNets = append(c.trustedNets, netPrefix(pfx))
	}
	if !slices.Contains([]string{"json", "console"}, c.Log.Format) {
		p.add("log.format", "must be json or console, got %q", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	c.validateSession(p)
	l := c.Limits
	if l.MaxHeaderBytes < 1024 {
		p.add("limits.maxHeaderBytes", "must be at least 1024")
	}
	if l.MaxBodyBytes < 0 {
		p.add("limits.maxBodyBytes", "must be positive")
	}
	if l.LoginRatePerMinute < 0 {
		p.add("limits.loginRatePerMinute", "must be positive")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"providerTimeout", l.ProviderTimeout}, {"upstreamTimeout", l.UpstreamTimeout}, {"shutdownTimeout", l.ShutdownTimeout}, {"bodyTimeout", l.BodyTimeout}} {
		if d.v < 0 {
			p.add("limits."+d.name, "must be positive")
		}
	}
	if len(c.Apps) == 0 {
		p.add("apps", "at least one app is required")
	}
	names := map[string]int{}
	envs := map[string]int{}
	routes := map[string]string{}
	for i := range c.Apps {
		a := &c.Apps[i]
		key := fmt.Sprintf("apps[%d]", i)
		switch j, dup := names[a.Name]; {
		case a.Name == "":
			p.add(key+".name", "required")
		case !validAppName(a.Name):
			p.add(key+".name", "use letters, digits, '-', '_' or '.' (at most 63), got %q", a.Name)
		case dup:
			p.add(key+".name", "duplicate app name %q (also apps[%d])", a.Name, j)
		default:
			if j, dup := envs[EnvName(a.Name)]; dup {
				p.add(key+".name", "%q and apps[%d] share the variable %s", a.Name, j, EnvName(a.Name))
			}
		}
		names[a.Name], envs[EnvName(a.Name)] = i, i
		a.validate(key, p)
		if a.url != nil {
			for _, h := range append([]string{a.url.Host}, a.Hosts...) {
				r := strings.ToLower(h) + strings.TrimSuffix(a.url.Path, "/")
				if other, dup := routes[r]; dup {
					p.add(key+".url", "host and path %q already used by app %q", r, other)
				}
				routes[r] = a.Name
			}
		}
	}
	c.validateCookieNames(p)
}

func checkAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("not host:port (port 0-65535)")
	}
	return nil
}

// parsePrefix parses a CIDR or a single IP. IPv4-mapped IPv6 prefixes
// (::ffff:10.0.0.0/104) become IPv4 ones, and zones are dropped, so that
// they match the unmapped peer addresses TrustsProxy compares.
func parsePrefix(s string) (netip.Prefix, bool) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, false
		}
		pfx = netip.PrefixFrom(a.WithZone(""), a.BitLen())
	}
	if a := pfx.Addr(); a.Is4In6() {
		if pfx.Bits() < 96 {
			return netip.Prefix{}, false
		}
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return pfx.Masked(), true
}

func validAppName(s string) bool {
	if len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (c *Config) validateSession(p *problems) {
	s := &c.Session
	switch s.Store {
	case "memory":
	case "redis":
		// The URL may carry a password: neither it nor the parse error
		// (which quotes the URL) is ever printed.
		u, err := url.Parse(s.Redis.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.add("session.redis.url", "must be redis://[:password@]host:port/db or rediss://…")
		}
		if s.Redis.PoolSize < 1 {
			p.add("session.redis.poolSize", "must be at least 1")
		}
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"dialTimeout", s.Redis.DialTimeout}, {"readTimeout", s.Redis.ReadTimeout}, {"writeTimeout", s.Redis.WriteTimeout}} {
			if d.v < 0 {
				p.add("session.redis."+d.name, "must be positive")
			}
		}
		if len(s.EncryptionKeys) == 0 {
			p.add("session.encryptionKeys", "required with the redis store (32-byte keys, base64; or BFF_SESSION_ENCRYPTION_KEYS)")
		}
	default:
		p.add("session.store", "must be memory or redis, got %q", s.Store)
	}
	if s.IdleTimeout < time.Minute {
		p.add("session.idleTimeout", "must be at least 1m")
	}
	if s.AbsoluteLifetime < s.IdleTimeout {
		p.add("session.absoluteLifetime", "must not be shorter than idleTimeout")
	}
	if s.LoginTimeout < 30*time.Second || s.LoginTimeout > time.Hour {
		p.add("session.loginTimeout", "must be between 30s and 1h")
	}
	if s.MaxPendingLogins < 1 || s.MaxPendingLogins > 20 {
		p.add("session.maxPendingLogins", "must be between 1 and 20")
	}
	for i, k := range s.EncryptionKeys {
		b, err := decodeKey(k)
		if err != nil {
			// The key itself is a secret: never echo it.
			p.add(fmt.Sprintf("session.encryptionKeys[%d]", i), "%v", err)
			continue
		}
		s.keys = append(s.keys, b)
	}
}

func decodeKey(k string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(k); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("must decode to 32 bytes, got %d", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// cookieScope lists where an app's cookies are sent: its hosts, and its
// cookie domain (with a leading dot) when set.
func (a *App) cookieScope() []string {
	var scope []string
	if a.url == nil {
		return nil
	}
	for _, h := range append([]string{a.url.Hostname()}, a.Hosts...) {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		scope = append(scope, strings.ToLower(h))
	}
	if a.Cookie.Domain != "" {
		scope = append(scope, "."+strings.TrimPrefix(strings.ToLower(a.Cookie.Domain), "."))
	}
	return scope
}

func scopesOverlap(x, y []string) (string, bool) {
	covers := func(d, h string) bool {
		return strings.HasPrefix(d, ".") && strings.HasSuffix("."+strings.TrimPrefix(h, "."), d)
	}
	for _, a := range x {
		for _, b := range y {
			if a == b || covers(a, b) || covers(b, a) {
				return strings.TrimPrefix(a, "."), true
			}
		}
	}
	return "", false
}

// validateCookieNames refuses apps whose cookies reach a common host with
// names that collide: equal, or one being the other's name plus "-…" (the
// BFF derives login and logout cookies that way, prefixes aside). One
// app's logout would end the other's session.
func (c *Config) validateCookieNames(p *problems) {
	base := func(n string) string {
		return strings.TrimPrefix(strings.TrimPrefix(n, "__Host-"), "__Secure-")
	}
	for j := range c.Apps {
		for i := range j {
			x, y := &c.Apps[i], &c.Apps[j]
			host, ok := scopesOverlap(x.cookieScope(), y.cookieScope())
			if !ok {
				continue
			}
			bx, by := base(x.Cookie.Name), base(y.Cookie.Name)
			if bx == by || strings.HasPrefix(by, bx+"-") || strings.HasPrefix(bx, by+"-") {
				p.add(fmt.Sprintf("apps[%d].cookie.name", j), "%q collides with %q of apps[%d] on %s; give each app a name that is not the other's plus \"-…\"", y.Cookie.Name, x.Cookie.Name, i, host)
			}
		}
	}
}
