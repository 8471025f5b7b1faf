package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// streamingConfig proxies /ws/ and /events/ anonymously to upstream.
func streamingServer(t *testing.T, upstream string) *httptest.Server {
	t.Helper()
	cfg, err := cfgWithURLExtra("http://127.0.0.1", `    cookie: {secure: false}
    apis:
      - prefix: /ws/
        upstream: `+upstream+`
        requireToken: false
      - prefix: /events/
        upstream: `+upstream+`
        requireToken: false
`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerNoT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// TestWebSocketUpgradeThroughBFF: the whole middleware chain lets an
// upgrade through (SPEC §6.6) when the Origin is the app's, and refuses a
// cross-site one (SPEC §6.2).
func TestWebSocketUpgradeThroughBFF(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		line, _ := rw.ReadString('\n')
		fmt.Fprint(rw, "echo:"+line)
		_ = rw.Flush()
	}))
	t.Cleanup(upstream.Close)
	srv := streamingServer(t, upstream.URL+"/")
	dial := func(origin string) (string, string) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n", origin)
		br := bufio.NewReader(conn)
		status, _ := br.ReadString('\n')
		for {
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		if !strings.Contains(status, "101") {
			return status, ""
		}
		fmt.Fprint(conn, "hello\n")
		echo, _ := br.ReadString('\n')
		return status, echo
	}
	if status, echo := dial("http://127.0.0.1"); !strings.Contains(status, "101") || echo != "echo:hello\n" {
		t.Fatalf("same-origin upgrade: %q %q", status, echo)
	}
	if status, _ := dial("https://evil.example"); !strings.Contains(status, "403") {
		t.Fatalf("cross-site upgrade: %q, want 403", status)
	}
}

// TestSSEIsNotBuffered: the first event reaches the browser while the
// upstream is still streaming.
func TestSSEIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-release
		fmt.Fprint(w, "data: second\n\n")
	}))
	t.Cleanup(upstream.Close)
	defer close(release)
	srv := streamingServer(t, upstream.URL+"/")
	req, _ := http.NewRequest("GET", srv.URL+"/events/stream", nil)
	req.Header.Set("X-CSRF", "1")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 0))
}

// TestSlowBodyIsCut: a client trickling a request body does not hold the
// connection beyond the body timeout.
func TestSlowBodyIsCut(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(upstream.Close)
	cfg, err := cfgWithURLExtra("http://127.0.0.1", `    cookie: {secure: false}
    apis:
      - prefix: /api/
        upstream: `+upstream.URL+`/
        requireToken: false
`)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.BodyTimeout = 200 * time.Millisecond
	s, err := newServerNoT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	// Also with an Upgrade header that does not make a WebSocket handshake,
	// and on routes outside any app.
	for _, c := range []struct{ path, extra string }{
		{"/api/upload", ""}, {"/auth/backchannel-logout", ""}, {"/healthz", ""},
		{"/api/upload", "Upgrade: websocket\r\nConnection: Upgrade\r\n"},
	} {
		path := c.path
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-CSRF: 1\r\n%sContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nx", path, c.extra)
		// Never send the rest; the BFF must give up on its own.
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		_, _ = io.Copy(io.Discard, conn)
		took := time.Since(start)
		conn.Close()
		if took > 12*time.Second {
			t.Fatalf("%s: connection held for %v by a trickling body", path, took)
		}
		t.Logf("%s: trickling body cut after %v", path, took.Round(10*time.Millisecond))
	}
}
