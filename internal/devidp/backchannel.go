package devidp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

const (
	// backchannelLogoutEvent is the member of the logout token's "events"
	// claim (OpenID Connect Back-Channel Logout 1.0, section 2.4).
	backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

	// logoutTokenLifetime is the logout token's exp - iat.
	logoutTokenLifetime = 2 * time.Minute

	// logoutTokenType is the JWT "typ" header recommended by Back-Channel
	// Logout 1.0, section 2.4, so a logout token cannot pass as an ID token.
	logoutTokenType = "logout+jwt"

	// defaultBackchannelTimeout bounds one delivery when Config.HTTPClient
	// has no timeout of its own.
	defaultBackchannelTimeout = 5 * time.Second
)

// logoutNotice is one logout token to deliver.
type logoutNotice struct {
	clientID string
	uri      string
	sub      string
	sid      string
}

// backchannelSender POSTs logout tokens to relying parties.
type backchannelSender struct {
	client *http.Client
	logger zerolog.Logger
}

// sendLogoutNotices signs and delivers the logout tokens concurrently and
// waits for all of them, each bounded by the HTTP client's timeout (or
// defaultBackchannelTimeout). The caller's cancellation does not abort a
// delivery: the user has already been logged out here, so the relying
// parties should hear of it. A non-2xx answer counts as a failure. It
// returns the joined delivery errors; the tokens themselves are never
// logged.
func (s *storage) sendLogoutNotices(ctx context.Context, notices []logoutNotice) error {
	if len(notices) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	errs := make([]error, len(notices))
	var wg sync.WaitGroup
	for i, n := range notices {
		wg.Go(func() {
			errs[i] = s.deliverLogoutToken(ctx, n)
		})
	}
	wg.Wait()

	s.mu.Lock()
	for _, err := range errs {
		if err == nil {
			s.stats.BackChannelSent++
		} else {
			s.stats.BackChannelFailed++
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

func (s *storage) deliverLogoutToken(ctx context.Context, n logoutNotice) error {
	token, err := s.logoutToken(n)
	if err != nil {
		s.backchannel.logger.Error().Err(err).Str("client_id", n.clientID).Msg("back-channel logout: sign token")
		return fmt.Errorf("back-channel logout to %s: %w", n.clientID, err)
	}
	if s.backchannel.client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultBackchannelTimeout)
		defer cancel()
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.uri, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("back-channel logout to %s: %w", n.clientID, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.backchannel.client.Do(req)
	if err != nil {
		// *url.Error names the URL only, never the form body.
		s.backchannel.logger.Warn().Err(err).Str("client_id", n.clientID).Str("sid", n.sid).Msg("back-channel logout: delivery failed")
		return fmt.Errorf("back-channel logout to %s: %w", n.clientID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.backchannel.logger.Warn().Int("status", resp.StatusCode).Str("client_id", n.clientID).Str("sid", n.sid).Msg("back-channel logout: relying party refused the logout token")
		return fmt.Errorf("back-channel logout to %s: status %d", n.clientID, resp.StatusCode)
	}
	s.backchannel.logger.Debug().Str("client_id", n.clientID).Str("sid", n.sid).Msg("back-channel logout delivered")
	return nil
}

// logoutToken builds and signs a logout token (Back-Channel Logout 1.0,
// section 2.4): iss, aud=[client_id], iat, exp, jti, sub, sid and the
// back-channel logout event; never a nonce. It is signed with the active
// key and typed "logout+jwt".
func (s *storage) logoutToken(n logoutNotice) (string, error) {
	s.mu.Lock()
	key := s.activeKey
	now := s.now()
	s.mu.Unlock()

	claims := oidc.NewLogoutTokenClaims(s.issuer, n.sub, oidc.Audience{n.clientID}, now.Add(logoutTokenLifetime), newRandomID(), n.sid, 0)
	claims.IssuedAt = oidc.FromTime(now)
	claims.Events = map[string]any{backchannelLogoutEvent: map[string]any{}}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: &jose.JSONWebKey{Key: key.key, KeyID: key.id}},
		(&jose.SignerOptions{}).WithType(logoutTokenType),
	)
	if err != nil {
		return "", fmt.Errorf("logout token signer: %w", err)
	}
	return crypto.Sign(claims, signer)
}
