package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Source is where Load reads from: the environment and files. Tests and
// fuzzers pass fakes.
type Source struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// Load reads the YAML file at path, applies environment overrides and
// defaults, and validates the result. Every problem is reported at once, as
// Problems.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, Source{Getenv: getenv, ReadFile: os.ReadFile})
}

// Parse is Load for bytes already read. It returns either a valid Config or
// a non-empty Problems, never both and never neither.
//
// Order of precedence, highest first: environment variables, *File
// settings, the YAML file, defaults. A secret given both in the YAML and in
// a *File setting is a problem (use one); an environment variable overrides
// both without a problem, and the file is then not read.
func Parse(data []byte, src Source) (cfg *Config, err error) {
	defer func() {
		// The YAML library is not ours; a panic on odd input must not take
		// `bff config check` down with a stack trace.
		if r := recover(); r != nil {
			cfg, err = nil, Problems{"config: cannot parse the file as YAML"}
		}
	}()
	if src.Getenv == nil {
		src.Getenv = func(string) string { return "" }
	}
	if src.ReadFile == nil {
		src.ReadFile = func(name string) ([]byte, error) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
	}
	var (
		c    Config
		root yaml.Node
		p    = problems{lines: map[string]int{}}
	)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		// Syntax errors carry a line and a fixed description, never a value.
		return nil, Problems{err.Error()}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		p.add("config", "only one YAML document is allowed")
	}
	if root.Kind != 0 {
		checkKeys(&root, reflect.TypeFor[Config](), "", &p)
		if err := root.Decode(&c); err != nil && p.empty() {
			p.addYAML(err)
		}
	}
	c.loadSecrets(src, &p)
	c.setDefaults()
	c.validate(&p)
	if !p.empty() {
		return nil, p.sorted()
	}
	return &c, nil
}

// EnvName is the environment variable that overrides app name's client
// secret: BFF_APP_<NAME>_CLIENT_SECRET, NAME upper-cased with '-', '.' and
// ' ' as '_'.
func EnvName(app string) string {
	r := strings.NewReplacer("-", "_", ".", "_", " ", "_")
	return "BFF_APP_" + strings.ToUpper(r.Replace(app)) + "_CLIENT_SECRET"
}

// loadSecrets applies environment overrides and reads *File settings.
func (c *Config) loadSecrets(src Source, p *problems) {
	if v := src.Getenv("BFF_LISTEN"); v != "" {
		c.Listen = v
	}
	if v := src.Getenv("BFF_ADMIN_LISTEN"); v != "" {
		c.AdminListen = v
	}
	if v := src.Getenv("BFF_ADMIN_TOKEN"); v != "" {
		c.AdminToken = v
	}
	if v := src.Getenv("BFF_REDIS_URL"); v != "" {
		c.Session.Redis.URL = v
	}
	s := &c.Session
	switch v := src.Getenv("BFF_SESSION_ENCRYPTION_KEYS"); {
	case v != "":
		s.EncryptionKeys = splitList(v)
	case s.EncryptionKeysFile != "" && len(s.EncryptionKeys) > 0:
		p.add("session.encryptionKeysFile", "set together with encryptionKeys; use one")
	case s.EncryptionKeysFile != "":
		if b, ok := readSecret(src.ReadFile, s.EncryptionKeysFile, "session.encryptionKeysFile", p); ok {
			s.EncryptionKeys = splitList(string(b))
			if len(s.EncryptionKeys) == 0 {
				p.add("session.encryptionKeysFile", "the file holds no key")
			}
		}
	}
	for i := range c.Apps {
		o := &c.Apps[i].OIDC
		key := fmt.Sprintf("apps[%d].oidc.clientSecretFile", i)
		switch v := src.Getenv(EnvName(c.Apps[i].Name)); {
		case v != "" && c.Apps[i].Name != "":
			o.ClientSecret = v
		case o.ClientSecretFile != "" && o.ClientSecret != "":
			p.add(key, "set together with clientSecret; use one")
		case o.ClientSecretFile != "":
			if b, ok := readSecret(src.ReadFile, o.ClientSecretFile, key, p); ok {
				o.ClientSecret = strings.TrimSpace(string(b))
				if o.ClientSecret == "" {
					p.add(key, "the file is empty")
				}
			}
		}
	}
}

// readSecret reads a secret file. Its error names the path and the system
// error only: never any content.
func readSecret(read func(string) ([]byte, error), name, key string, p *problems) ([]byte, bool) {
	b, err := read(name)
	if err == nil {
		return b, true
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		p.add(key, "cannot read %q: %v", name, pe.Err)
	} else {
		p.add(key, "cannot read %q", name)
	}
	return nil, false
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *Config) setDefaults() {
	def(&c.Listen, ":8080")
	def(&c.AdminListen, "127.0.0.1:9090")
	def(&c.Log.Format, "json")
	def(&c.Log.Level, "info")
	s := &c.Session
	def(&s.Store, "memory")
	def(&s.Redis.URL, "redis://127.0.0.1:6379/0")
	def(&s.Redis.KeyPrefix, "bff:")
	def(&s.Redis.PoolSize, 32)
	def(&s.Redis.DialTimeout, 500*time.Millisecond)
	def(&s.Redis.ReadTimeout, 500*time.Millisecond)
	def(&s.Redis.WriteTimeout, 500*time.Millisecond)
	def(&s.IdleTimeout, 8*time.Hour)
	def(&s.AbsoluteLifetime, 24*time.Hour)
	def(&s.LoginTimeout, 10*time.Minute)
	def(&s.MaxPendingLogins, 5)
	l := &c.Limits
	def(&l.MaxHeaderBytes, 32<<10)
	def(&l.MaxBodyBytes, 10<<20)
	def(&l.LoginRatePerMinute, 60)
	def(&l.ProviderTimeout, 10*time.Second)
	def(&l.UpstreamTimeout, 30*time.Second)
	def(&l.ShutdownTimeout, 15*time.Second)
	def(&l.BodyTimeout, 60*time.Second)
	for i := range c.Apps {
		a := &c.Apps[i]
		base := strings.TrimSuffix(a.URL, "/")
		def(&a.OIDC.AuthMethod, "client_secret_basic")
		if len(a.OIDC.Scopes) == 0 {
			a.OIDC.Scopes = []string{"openid", "profile", "email", "offline_access"}
		}
		def(&a.OIDC.RedirectURL, base+"/auth/callback")
		def(&a.OIDC.PostLogoutRedirectURL, base+"/")
		def(&a.OIDC.RefreshSkew, 60*time.Second)
		def(&a.OIDC.DefaultTokenLifetime, 5*time.Minute)
		def(&a.OIDC.ClockSkew, 30*time.Second)
		def(&a.OIDC.ResponseMode, "query")
		if a.Cookie.Name == "" {
			switch {
			case !a.Cookie.CookieSecure():
				a.Cookie.Name = "bff"
			case a.Cookie.Domain != "":
				// __Host- forbids a domain (RFC 6265bis §4.1.3.2); __Secure- allows it.
				a.Cookie.Name = "__Secure-bff"
			default:
				a.Cookie.Name = "__Host-bff"
			}
			if len(c.Apps) > 1 {
				a.Cookie.Name += "-" + a.Name
			}
		}
		def(&a.Cookie.SameSite, "lax")
		a.Cookie.SameSite = strings.ToLower(a.Cookie.SameSite)
		def(&a.CSRFHeader, "X-CSRF")
		def(&a.SPA.ContentSecurityPolicy, DefaultCSP)
		if len(a.Me.Claims) == 0 {
			a.Me.Claims = []string{"sub", "name", "given_name", "family_name", "email", "email_verified", "preferred_username"}
		}
	}
}

func def[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
