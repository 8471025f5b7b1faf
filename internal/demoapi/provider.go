package demoapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
)

// acceptedAlg reports whether a JWS algorithm named in discovery may be
// accepted: the asymmetric ones of RFC 7518 §3.1 and RFC 8037. HS* and
// "none" are left out on purpose: a JWKS holds public keys, and accepting an
// HMAC algorithm would let a public key serve as a shared secret
// (RFC 8725 §2.1, §3.1).
func acceptedAlg(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512",
		"PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512",
		"EdDSA":
		return true
	}
	return false
}

// keys is what discovery yields: the key set and the accepted algorithms.
type keys struct {
	issuer string
	set    zoidc.KeySet
	algs   []string
}

// provider loads the discovery document lazily and keeps it once loaded.
// Failed loads are not cached: the next request tries again.
type provider struct {
	issuer     string
	httpClient *http.Client
	logger     zerolog.Logger

	// sem is a one-slot semaphore guarding the fetch, so that concurrent
	// requests share one discovery request and a waiting request can still
	// give up when its client goes away.
	sem chan struct{}

	mu     sync.RWMutex
	loaded *keys
}

func newProvider(issuer string, httpClient *http.Client, logger zerolog.Logger) *provider {
	return &provider{
		issuer:     issuer,
		httpClient: httpClient,
		logger:     logger,
		sem:        make(chan struct{}, 1),
	}
}

func (p *provider) cached() *keys {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.loaded
}

// load returns the provider's keys, fetching the discovery document if it
// has not been loaded yet.
func (p *provider) load(ctx context.Context) (*keys, error) {
	if k := p.cached(); k != nil {
		return k, nil
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for discovery: %w", ctx.Err())
	}
	defer func() { <-p.sem }()
	if k := p.cached(); k != nil { // loaded while we waited
		return k, nil
	}

	// client.Discover checks that the document's issuer equals ours exactly.
	disc, err := client.Discover(ctx, p.issuer, p.httpClient)
	if err != nil {
		p.logger.Warn().Err(err).Str("issuer", p.issuer).Msg("demo api: discovery failed, will retry on next request")
		return nil, fmt.Errorf("discover %s: %w", p.issuer, err)
	}
	if disc.JwksURI == "" {
		return nil, fmt.Errorf("discover %s: no jwks_uri", p.issuer)
	}
	// zitadel/oidc's defaults are always accepted; discovery may add more.
	algs := []string{"RS256", "ES256", "PS256"}
	for _, alg := range disc.IDTokenSigningAlgValuesSupported {
		if acceptedAlg(alg) && !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	k := &keys{
		issuer: disc.Issuer,
		// The remote key set caches keys and refetches on an unknown kid.
		set:  rp.NewRemoteKeySet(p.httpClient, disc.JwksURI),
		algs: algs,
	}
	p.mu.Lock()
	p.loaded = k
	p.mu.Unlock()
	p.logger.Info().Str("issuer", p.issuer).Str("jwks_uri", disc.JwksURI).
		Str("algs", strings.Join(algs, " ")).Msg("demo api: provider discovered")
	return k, nil
}
