package session

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// browser keeps cookies the way a browser would across responses.
type browser struct{ jar map[string]*http.Cookie }

func newBrowser() *browser { return &browser{jar: map[string]*http.Cookie{}} }

func (b *browser) cookies() []*http.Cookie {
	var out []*http.Cookie
	for _, c := range b.jar {
		out = append(out, c)
	}
	return out
}

func (b *browser) store(w *httptest.ResponseRecorder) {
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.jar, c.Name)
		} else {
			b.jar[c.Name] = c
		}
	}
}

// txCookies are the browser's pending login cookies.
func (b *browser) txCookies(m *Manager) []*http.Cookie {
	var out []*http.Cookie
	for name, c := range b.jar {
		if strings.HasPrefix(name, m.txCookiePrefix()) {
			out = append(out, c)
		}
	}
	return out
}

func testTx(state string) *LoginTx {
	return &LoginTx{State: state, Nonce: "nonce-" + state, Verifier: "verifier-" + state, ReturnTo: "/after/" + state}
}

// begin starts a login in b and returns the response.
func begin(t *testing.T, m *Manager, b *browser, state string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.BeginLogin(w, newRequest(b.cookies()...), testTx(state)); err != nil {
		t.Fatalf("BeginLogin(%q): %v", state, err)
	}
	b.store(w)
	return w
}

func finish(m *Manager, b *browser, state string) (*LoginTx, *httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	tx, err := m.FinishLogin(w, newRequest(b.cookies()...), state)
	b.store(w)
	return tx, w, err
}

func wantTx(t *testing.T, tx *LoginTx, err error, state string) {
	t.Helper()
	want := testTx(state)
	if err != nil || tx == nil || tx.State != state || tx.Nonce != want.Nonce || tx.Verifier != want.Verifier || tx.ReturnTo != want.ReturnTo {
		t.Fatalf("FinishLogin(%q) = %+v, %v; want %+v", state, tx, err, want)
	}
}

func TestBeginLoginCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Settings)
	}{
		{"secure", nil},
		// The transaction cookie stays Lax: the provider's redirect back is
		// a cross-site navigation that a Strict cookie would miss.
		{"insecure, strict session cookie", func(s *Settings) {
			s.CookieName, s.CookieSecure, s.SameSite = "bff", false, http.SameSiteStrictMode
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, tt.edit, func(t *testing.T, h *harness) {
				b := newBrowser()
				w := begin(t, h.m, b, "state-1")
				cs := w.Result().Cookies()
				if len(cs) != 1 {
					t.Fatalf("BeginLogin set %d cookies %v, want 1", len(cs), cs)
				}
				c := cs[0]
				if !strings.HasPrefix(c.Name, h.set.CookieName+"-tx-") || !c.HttpOnly || c.Secure != h.set.CookieSecure ||
					c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != int(h.set.LoginTimeout/time.Second) {
					t.Fatalf("tx cookie = %+v, want name %s-tx-…, HttpOnly, Secure=%v, SameSite=Lax, Path=/, Max-Age=%d",
						c, h.set.CookieName, h.set.CookieSecure, int(h.set.LoginTimeout/time.Second))
				}
				for _, s := range []string{"state-1", "nonce-state-1", "verifier-state-1"} {
					if strings.Contains(c.Name+c.Value, s) {
						t.Fatalf("tx cookie %s=%s reveals %q", c.Name, c.Value, s)
					}
				}
				for _, blob := range h.everything(t) {
					for _, s := range []string{"nonce-state-1", "verifier-state-1", "/after/state-1"} {
						if bytes.Contains(blob, []byte(s)) {
							t.Fatalf("the store holds %q in clear", s)
						}
					}
				}
				// The same state twice is refused.
				err := h.m.BeginLogin(httptest.NewRecorder(), newRequest(), testTx("state-1"))
				if !errors.Is(err, ErrExists) {
					t.Fatalf("BeginLogin with a pending state: err = %v, want ErrExists", err)
				}
			})
		})
	}
}

func TestFinishLogin(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		t.Run("once", func(t *testing.T) {
			b := newBrowser()
			begin(t, h.m, b, "once")
			name := h.m.txCookieName("once")
			tx, w, err := finish(h.m, b, "once")
			wantTx(t, tx, err, "once")
			if c := setCookie(w, name); c == nil || c.MaxAge >= 0 {
				t.Fatalf("FinishLogin set %v, want the tx cookie %s expired", c, name)
			}
			if tx, _, err := finish(h.m, b, "once"); !errors.Is(err, ErrLoginUnknown) {
				t.Fatalf("second FinishLogin (cookie cleared) = %+v, %v; want ErrLoginUnknown", tx, err)
			}
		})
		t.Run("second call with the same cookie", func(t *testing.T) {
			b := newBrowser()
			begin(t, h.m, b, "twice")
			kept := b.txCookies(h.m)
			_, _, err := finish(h.m, b, "twice")
			if err != nil {
				t.Fatalf("first FinishLogin: %v", err)
			}
			tx, _, err := finishWith(h.m, newRequest(kept...), "twice")
			if !errors.Is(err, ErrLoginUnknown) {
				t.Fatalf("second FinishLogin with the same cookie = %+v, %v; want ErrLoginUnknown", tx, err)
			}
		})
		t.Run("without the cookie it is not consumed", func(t *testing.T) {
			b := newBrowser()
			begin(t, h.m, b, "nocookie")
			stranger := newBrowser()
			for range 2 {
				if tx, _, err := finish(h.m, stranger, "nocookie"); !errors.Is(err, ErrLoginUnknown) {
					t.Fatalf("FinishLogin without the cookie = %+v, %v; want ErrLoginUnknown", tx, err)
				}
			}
			tx, _, err := finish(h.m, b, "nocookie")
			wantTx(t, tx, err, "nocookie")
		})
		t.Run("another transaction's cookie", func(t *testing.T) {
			b := newBrowser()
			begin(t, h.m, b, "tab-a")
			other := newBrowser()
			begin(t, h.m, other, "tab-b")
			if tx, _, err := finish(h.m, other, "tab-a"); !errors.Is(err, ErrLoginUnknown) {
				t.Fatalf("FinishLogin(tab-a) with tab-b's cookie = %+v, %v; want ErrLoginUnknown", tx, err)
			}
			tx, _, err := finish(h.m, b, "tab-a")
			wantTx(t, tx, err, "tab-a")
		})
		t.Run("two tabs", func(t *testing.T) {
			b := newBrowser()
			begin(t, h.m, b, "tab-1")
			begin(t, h.m, b, "tab-2")
			tx, _, err := finish(h.m, b, "tab-2")
			wantTx(t, tx, err, "tab-2")
			tx, _, err = finish(h.m, b, "tab-1")
			wantTx(t, tx, err, "tab-1")
		})
		wrongValues := []struct {
			name  string
			value string
		}{
			{"other secret", base64.RawURLEncoding.EncodeToString(randomBytes(24)) + ".1700000000"},
			{"other secret, no timestamp", base64.RawURLEncoding.EncodeToString(randomBytes(24))},
			{"not base64", "!!!not-base64!!!"},
			{"empty", ""},
		}
		for i, wv := range wrongValues {
			t.Run("wrong cookie value: "+wv.name, func(t *testing.T) {
				state := fmt.Sprintf("wrong-%d", i)
				begin(t, h.m, newBrowser(), state)
				forged := &http.Cookie{Name: h.m.txCookieName(state), Value: wv.value}
				tx, _, err := finishWith(h.m, newRequest(forged), state)
				if !errors.Is(err, ErrLoginForeign) {
					t.Fatalf("FinishLogin with cookie value %q = %+v, %v; want ErrLoginForeign", wv.value, tx, err)
				}
			})
		}
		for _, state := range []string{"", strings.Repeat("s", 513)} {
			if tx, _, err := finishWith(h.m, newRequest(), state); !errors.Is(err, ErrLoginUnknown) {
				t.Fatalf("FinishLogin(state of %d bytes) = %+v, %v; want ErrLoginUnknown", len(state), tx, err)
			}
		}
	})
}

func TestFinishLoginTimeout(t *testing.T) {
	t.Parallel()
	eachStore(t, nil, func(t *testing.T, h *harness) {
		early, late := newBrowser(), newBrowser()
		begin(t, h.m, early, "early")
		begin(t, h.m, late, "late")
		h.clock.Advance(h.set.LoginTimeout - time.Second)
		tx, _, err := finish(h.m, early, "early")
		wantTx(t, tx, err, "early")
		h.clock.Advance(2 * time.Second)
		tx, _, err = finish(h.m, late, "late")
		if !errors.Is(err, ErrLoginExpired) && !errors.Is(err, ErrLoginUnknown) {
			t.Fatalf("FinishLogin past the login timeout = %+v, %v; want ErrLoginExpired or ErrLoginUnknown", tx, err)
		}
	})
}

func TestMaxPendingLogins(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{5, 2} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(s *Settings) { s.MaxPendingLogins = limit }, func(t *testing.T, h *harness) {
				b := newBrowser()
				var states []string
				for i := range limit {
					states = append(states, fmt.Sprintf("pending-%d", i))
					if w := begin(t, h.m, b, states[i]); len(w.Result().Cookies()) != 1 {
						t.Fatalf("BeginLogin %d of %d set %v, want only its own cookie", i+1, limit, w.Result().Cookies())
					}
					h.clock.Advance(time.Second) // the cookies record their creation second
				}
				oldest := b.jar[h.m.txCookieName(states[0])]
				if oldest == nil || len(b.txCookies(h.m)) != limit {
					t.Fatalf("browser holds %d tx cookies, want %d", len(b.txCookies(h.m)), limit)
				}
				w := begin(t, h.m, b, "one-too-many")
				expired := setCookie(w, oldest.Name)
				if expired == nil || expired.MaxAge >= 0 {
					t.Fatalf("BeginLogin beyond %d pending: Set-Cookie %v, want the oldest (%s) expired (Max-Age<0); all: %v",
						limit, expired, oldest.Name, w.Result().Cookies())
				}
				if n := len(w.Result().Cookies()); n != 2 {
					t.Fatalf("BeginLogin beyond %d pending set %d cookies %v, want 2 (expire the oldest, add the new)", limit, n, w.Result().Cookies())
				}
				if got := len(b.txCookies(h.m)); got != limit {
					t.Fatalf("browser holds %d tx cookies after the drop, want %d", got, limit)
				}
				if tx, _, err := finish(h.m, b, states[0]); !errors.Is(err, ErrLoginUnknown) {
					t.Fatalf("FinishLogin of the dropped transaction = %+v, %v; want ErrLoginUnknown", tx, err)
				}
				for _, s := range append(states[1:], "one-too-many") {
					tx, _, err := finish(h.m, b, s)
					wantTx(t, tx, err, s)
				}
			})
		})
	}
}

// finishWith runs FinishLogin on r.
func finishWith(m *Manager, r *http.Request, state string) (*LoginTx, *httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	tx, err := m.FinishLogin(w, r, state)
	return tx, w, err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
