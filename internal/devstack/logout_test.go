package devstack

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLogoutContinuation: only the app's own navigation continues a
// logout to the provider, once; without a session the provider URL comes
// straight back, carrying no token and leaving nothing in the store.
func TestLogoutContinuation(t *testing.T) {
	st := startStack(t, Options{})
	b := newBrowser(t)
	b.login(st, "alice", "alice", "/")
	resp, body := b.do(http.MethodPost, st.BFFURL+"/auth/logout", nil, csrfHeader)
	if resp.StatusCode != http.StatusOK || decodeJSON(t, body)["endSessionUrl"] != "/auth/logout/continue" {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	// A link from another site is not followed to the provider...
	req, _ := http.NewRequest(http.MethodGet, st.BFFURL+"/auth/logout/continue", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	cross, err := b.noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cross.Body.Close()
	if cross.Header.Get("Location") != "/" {
		t.Fatalf("cross-site continue: %q, want the app root", cross.Header.Get("Location"))
	}
	// ...and does not use up the continuation.
	own, err := b.noRedirects().Get(st.BFFURL + "/auth/logout/continue")
	if err != nil {
		t.Fatal(err)
	}
	own.Body.Close()
	if loc := own.Header.Get("Location"); !strings.HasPrefix(loc, st.IssuerURL) || !strings.Contains(loc, "id_token_hint=") {
		t.Fatalf("own continue: %q, want the provider with id_token_hint", loc)
	}

	// Without a session: straight to the provider, client_id only.
	anon := newBrowser(t)
	resp, body = anon.do(http.MethodPost, st.BFFURL+"/auth/logout", nil, csrfHeader)
	end, _ := decodeJSON(t, body)["endSessionUrl"].(string)
	u, err := url.Parse(end)
	if resp.StatusCode != http.StatusOK || err != nil || !strings.HasPrefix(end, st.IssuerURL) ||
		u.Query().Get("client_id") != ClientID || u.Query().Get("id_token_hint") != "" {
		t.Fatalf("logout without a session: %d %q", resp.StatusCode, end)
	}
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "-logout") && c.MaxAge > 0 {
			t.Fatal("logout without a session stored a continuation")
		}
	}
}
