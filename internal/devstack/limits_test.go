package devstack

import (
	"net/http"
	"strings"
	"testing"
)

// TestHeaderSizeLimit: SPEC §6.7 — oversized request headers are refused
// before any handler runs.
func TestHeaderSizeLimit(t *testing.T) {
	st := startStack(t, Options{})
	req, _ := http.NewRequest(http.MethodGet, st.BFFURL+"/auth/me", nil)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB header: %d, want 431", resp.StatusCode)
	}
}
