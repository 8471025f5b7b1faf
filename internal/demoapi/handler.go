// Package demoapi is the demo upstream API that `bff dev` puts behind the
// BFF's proxy. It plays the part of an API team's resource server: every
// request must carry `Authorization: Bearer <JWT access token>`, which it
// verifies against the OpenID Provider's JWKS (RFC 9068 style: signature,
// exact `iss`, `exp`/`nbf`/`iat` with a bounded leeway, and `aud` when an
// audience is configured), and it answers with what it saw: the subject, the
// ZITADEL roles, the client, the scopes, and the names (never the values) of
// the cookies and headers it received, so that a developer can check that the
// BFF forwards a bearer token and not its own cookie.
//
// Trust model: the handler trusts only the provider named by Config.Issuer
// and the keys published at that provider's discovered jwks_uri. Symmetric
// (HS*) and "none" algorithms are never accepted, so a public key can never
// be used as an HMAC secret (RFC 8725 §3.1, §3.2).
//
// Tokens are never logged and never echoed in responses.
package demoapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Leeway is the clock skew tolerated when checking exp, nbf and iat.
const Leeway = 30 * time.Second

// DefaultHTTPTimeout is the timeout of the HTTP client used for discovery and
// JWKS when Config.HTTPClient is nil.
const DefaultHTTPTimeout = 10 * time.Second

// Config configures a Handler. Only Issuer is required.
type Config struct {
	// Issuer is the provider's issuer identifier, byte for byte equal to the
	// "issuer" of its discovery document and to the tokens' "iss" claim
	// (no trailing-slash normalisation). Required; must be an absolute
	// http(s) URL.
	Issuer string

	// Audience, when not empty, must be one of the token's "aud" entries
	// (for example the BFF's client ID or the ZITADEL project ID). Empty
	// skips the audience check.
	Audience string

	// HTTPClient is used for discovery and JWKS requests. Default: a client
	// with a DefaultHTTPTimeout (10 s) timeout.
	HTTPClient *http.Client

	// Logger receives one line per rejected request and per discovery
	// attempt. Default: the zero logger, which is disabled.
	Logger zerolog.Logger

	// Now returns the current time for exp, nbf and iat checks and for
	// expiresIn. Default: time.Now.
	Now func() time.Time
}

// Handler is an http.Handler that verifies bearer JWT access tokens and
// echoes what it saw. It is safe for concurrent use.
type Handler struct {
	audience string
	logger   zerolog.Logger
	now      func() time.Time
	provider *provider
}

// New validates cfg and returns a Handler. It does no I/O: the provider's
// discovery document is fetched on the first request (or by Discover) and,
// until it has been loaded once, again on every later request, so the demo
// API can start before the provider. ctx is accepted for symmetry with the
// other constructors and is not retained.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	_ = ctx
	if cfg.Issuer == "" {
		return nil, errors.New("demoapi: issuer is required")
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("demoapi: issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Handler{
		audience: cfg.Audience,
		logger:   cfg.Logger,
		now:      now,
		provider: newProvider(cfg.Issuer, httpClient, cfg.Logger),
	}, nil
}

// Discover loads the provider's discovery document if it is not loaded yet.
// It is what every request does first; callers may use it as a readiness
// check. Safe for concurrent use; concurrent callers share one fetch.
func (h *Handler) Discover(ctx context.Context) error {
	_, err := h.provider.load(ctx)
	return err
}

// Response is the JSON body of a successful request.
type Response struct {
	Sub             string   `json:"sub"`
	Roles           []string `json:"roles"`
	ExpiresAt       string   `json:"expiresAt"`
	ExpiresIn       int64    `json:"expiresIn"`
	ClientID        string   `json:"clientId"`
	Scopes          []string `json:"scopes"`
	Method          string   `json:"method"`
	Path            string   `json:"path"`
	ReceivedCookies []string `json:"receivedCookies"`
	ReceivedHeaders []string `json:"receivedHeaders"`
}

// errorBody is the JSON body of a failed request.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

// ServeHTTP answers any method and path: 200 with a Response when the bearer
// token verifies; 401 missing_token (challenge `Bearer`, RFC 6750 §3.1) when
// there is no bearer token; 401 invalid_token with a short reason when the
// token does not verify, including when its key cannot be found in the JWKS;
// and 503 provider_unavailable while the discovery document cannot be
// fetched. Error bodies are JSON {"error": code, "message": reason}.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.logger.With().Str("method", r.Method).Str("path", r.URL.Path).Logger()

	raw, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		log.Info().Msg("demo api: request without bearer token")
		// RFC 6750 §3.1: no error code when the request has no authentication.
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing_token", Message: "an Authorization: Bearer token is required"})
		return
	}

	claims, err := h.verify(r.Context(), raw)
	if err != nil {
		var ve *verifyError
		if errors.As(err, &ve) {
			log.Info().Err(ve.err).Str("reason", ve.msg).Msg("demo api: token rejected")
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, ve.msg))
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid_token", Message: ve.msg})
			return
		}
		log.Warn().Err(err).Msg("demo api: provider unavailable")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "provider_unavailable", Message: "the OpenID Provider's keys could not be loaded"})
		return
	}

	now := h.now()
	exp := claims.GetExpiration()
	expiresIn := int64(exp.Sub(now) / time.Second)
	if expiresIn < 0 {
		expiresIn = 0 // within the leeway
	}
	clientID := claims.AuthorizedParty
	if clientID == "" {
		clientID = claims.ClientID
	}
	resp := Response{
		Sub:             claims.Subject,
		Roles:           roles(claims.Claims),
		ExpiresAt:       exp.UTC().Format(time.RFC3339),
		ExpiresIn:       expiresIn,
		ClientID:        clientID,
		Scopes:          scopes(claims.Scopes),
		Method:          r.Method,
		Path:            r.URL.Path,
		ReceivedCookies: cookieNames(r),
		ReceivedHeaders: headerNames(r.Header),
	}
	log.Debug().Str("sub", claims.Subject).Msg("demo api: request served")
	writeJSON(w, http.StatusOK, resp)
}

// bearerToken extracts the token of an RFC 6750 §2.1 Authorization header.
// The scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func cookieNames(r *http.Request) []string {
	names := []string{}
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func headerNames(h http.Header) []string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func scopes(in []string) []string {
	out := []string{}
	for _, s := range in {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
