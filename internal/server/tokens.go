package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/bff-dev/bff/internal/oidc"
	"github.com/bff-dev/bff/internal/session"
)

var (
	// errSessionEnded: the provider rejected the refresh token; the
	// session is over (401).
	errSessionEnded = errors.New("session ended by the provider")
	// errRefreshFailed: the provider could not refresh right now; the
	// session is kept (503) and a later request retries.
	errRefreshFailed = errors.New("token refresh failed")
)

// refreshLease bounds how long one replica may hold a session's refresh
// lock: longer than the slowest provider call it makes.
func (a *app) refreshLease() time.Duration { return a.s.cfg.Limits.ProviderTimeout*2 + 5*time.Second }

// AccessToken implements proxy.TokenSource: the session's access token,
// refreshed first when it expires within the skew.
func (a *app) AccessToken(r *http.Request) (string, bool, error) {
	rec, err := a.sessions.Load(r)
	if errors.Is(err, session.ErrNoSession) {
		if err != session.ErrNoSession {
			hlog.FromRequest(r).Warn().Err(err).Msg("unreadable session treated as none")
		}
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if err := a.sessions.Touch(r.Context(), rec); err != nil {
		return "", false, err
	}
	rec, err = a.fresh(r.Context(), rec, hlog.FromRequest(r), a.s.clientIP(r))
	if err != nil {
		return "", false, err
	}
	return rec.AccessToken, true, nil
}

func (a *app) expiring(rec *session.Record) bool {
	return !a.s.deps.Now().Add(a.cfg.OIDC.RefreshSkew).Before(rec.Expiry)
}

// fresh returns rec with an access token that does not expire within the
// skew. Refresh is single-flight per session: within the process through
// singleflight, across replicas through the store lock; whoever gets the
// lock re-reads the record first, so late requests reuse the new token and
// a rotated refresh token is never sent twice.
func (a *app) fresh(ctx context.Context, rec *session.Record, log *zerolog.Logger, ip string) (*session.Record, error) {
	if !a.expiring(rec) {
		return rec, nil
	}
	id := rec.ID
	v, err, _ := a.flight.Do(id, func() (any, error) {
		// Detached from the request: one caller's disconnect must not fail
		// the refresh that its peers wait for.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.refreshLease())
		defer cancel()
		return a.refreshLocked(ctx, id, log, ip)
	})
	if err != nil {
		return nil, err
	}
	return v.(*session.Record), nil
}

func (a *app) refreshLocked(ctx context.Context, id string, log *zerolog.Logger, ip string) (*session.Record, error) {
	wait := 10 * time.Millisecond
	for {
		cur, err := a.sessions.Get(ctx, id)
		if errors.Is(err, session.ErrNoSession) {
			return nil, errSessionEnded
		}
		if err != nil {
			return nil, err
		}
		if !a.expiring(cur) {
			return cur, nil // another replica refreshed while we waited
		}
		unlock, err := a.sessions.Lock(ctx, id, a.refreshLease())
		if err == nil {
			defer unlock()
			// Re-read under the lock: the holder before us may have finished
			// between our read and our lock.
			cur, err = a.sessions.Get(ctx, id)
			if errors.Is(err, session.ErrNoSession) {
				return nil, errSessionEnded
			}
			if err != nil {
				return nil, err
			}
			if !a.expiring(cur) {
				return cur, nil
			}
			return a.refresh(ctx, cur, log, ip)
		}
		if !errors.Is(err, session.ErrConflict) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for another replica's refresh: %w", errRefreshFailed, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// refresh redeems the refresh token while holding the lock. The rotated
// refresh token is stored before anything else can fail (research §1.4);
// only then is the new ID token verified.
func (a *app) refresh(ctx context.Context, cur *session.Record, log *zerolog.Logger, ip string) (*session.Record, error) {
	m := a.s.deps.Metrics
	if cur.RefreshToken == "" {
		a.audit(log, "refresh_failure", cur, ip).Str("reason", "no refresh token").Send()
		_ = a.sessions.Delete(ctx, cur.ID, cur)
		return nil, errSessionEnded
	}
	usedRT := cur.RefreshToken
	var toks *oidc.Tokens
	var err error
	if p, ok := a.unsaved.take(cur.ID, usedRT); ok {
		// An earlier refresh got these tokens but could not store them:
		// use them, never usedRT again (the provider has rotated it away).
		log.Info().Str("session", session.HashID(cur.ID)).Msg("storing tokens of an earlier refresh")
		toks = p
		if p.RefreshToken != "" && !a.s.deps.Now().Add(a.cfg.OIDC.RefreshSkew).Before(p.Expiry) {
			// Those expire too by now: refresh with their refresh token.
			cur.RefreshToken, usedRT = p.RefreshToken, p.RefreshToken
			toks, err = a.oidc.Refresh(ctx, usedRT)
		}
	} else {
		toks, err = a.oidc.Refresh(ctx, usedRT)
	}
	if errors.Is(err, oidc.ErrInvalidGrant) {
		m.refreshed("invalid_grant")
		a.audit(log, "refresh_failure", cur, ip).Str("reason", "invalid_grant").Send()
		_ = a.sessions.Delete(ctx, cur.ID, cur)
		a.audit(log, "session_ended", cur, ip).Str("reason", "refresh token rejected").Send()
		return nil, errSessionEnded
	}
	if err != nil {
		m.refreshed("transient_error")
		return nil, fmt.Errorf("%w: %w", errRefreshFailed, err)
	}
	cur.AccessToken = toks.AccessToken
	cur.Expiry = toks.Expiry
	if toks.TokenType != "" {
		cur.TokenType = toks.TokenType
	}
	if toks.RefreshToken != "" {
		cur.RefreshToken = toks.RefreshToken
	}
	if err := a.saveRetrying(ctx, cur); err != nil {
		m.refreshed("store_error")
		switch {
		case errors.Is(err, session.ErrNotFound):
			return nil, errSessionEnded // logged out meanwhile
		case errors.Is(err, session.ErrConflict):
			// Our lease ran out and another replica refreshed: its tokens
			// are the newest, use them.
			if rec, gerr := a.sessions.Get(ctx, cur.ID); gerr == nil && !a.expiring(rec) {
				return rec, nil
			}
			return nil, fmt.Errorf("%w: lost the refresh race", errRefreshFailed)
		}
		// The store is down: keep the new tokens here, so the next refresh
		// stores them instead of replaying the rotated refresh token.
		a.unsaved.put(cur.ID, usedRT, toks)
		return nil, fmt.Errorf("store refreshed tokens: %w", err)
	}
	m.refreshed("success")
	if toks.IDToken == "" {
		return cur, nil
	}
	claims, err := a.oidc.VerifyRefreshedIDToken(ctx, toks.IDToken, cur.Subject, cur.Nonce)
	if err != nil {
		log.Warn().Err(err).Str("session", session.HashID(cur.ID)).Msg("refreshed id_token rejected")
		if errors.Is(err, oidc.ErrSubjectChanged) {
			// A token for someone else ends the session; other failures
			// (a JWKS outage) keep the session and the previous ID token.
			_ = a.sessions.Delete(ctx, cur.ID, cur)
			a.audit(log, "session_ended", cur, ip).Str("reason", "refreshed id_token invalid").Send()
			return nil, errSessionEnded
		}
		return cur, nil
	}
	cur.IDToken = toks.IDToken
	cur.Claims = session.NewClaims(a.pickClaims(claims, cur.Claims.Map()))
	if err := a.sessions.Save(ctx, cur); err != nil && !errors.Is(err, session.ErrNotFound) {
		log.Warn().Err(err).Msg("store refreshed id_token")
	}
	return cur, nil
}

// saveRetrying stores rec, retrying a store that is briefly unavailable
// within ctx (the refresh lease): the provider has already rotated the
// refresh token, so giving up early would lose the session.
func (a *app) saveRetrying(ctx context.Context, rec *session.Record) error {
	wait := 25 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := a.sessions.Save(ctx, rec)
		if err == nil || !errors.Is(err, session.ErrUnavailable) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// unsavedTokens keeps, per session, tokens that a refresh obtained but
// could not store, keyed by the refresh token they replace. The next
// refresh of that session (in this process) stores them instead of sending
// the rotated refresh token again. Entries expire after unsavedTTL.
type unsavedTokens struct {
	mu sync.Mutex
	m  map[string]unsavedEntry
}

type unsavedEntry struct {
	usedRT string
	toks   *oidc.Tokens
	until  time.Time
}

const unsavedTTL = 30 * time.Minute

func (u *unsavedTokens) put(id, usedRT string, toks *oidc.Tokens) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]unsavedEntry{}
	}
	now := time.Now()
	for k, e := range u.m {
		if now.After(e.until) {
			delete(u.m, k)
		}
	}
	u.m[id] = unsavedEntry{usedRT: usedRT, toks: toks, until: now.Add(unsavedTTL)}
}

func (u *unsavedTokens) take(id, usedRT string) (*oidc.Tokens, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.m[id]
	if !ok || e.usedRT != usedRT || time.Now().After(e.until) {
		return nil, false
	}
	delete(u.m, id)
	return e.toks, true
}
