package proxy

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

// stuck bounds how long a test waits for something that must already have
// happened; reaching it means the proxy buffered or hung.
const stuck = 10 * time.Second

// TestStreaming checks that a streamed response reaches the client event by
// event: the upstream writes its second event only after the client got the
// first one through the proxy.
func TestStreaming(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contentType string
	}{
		{"server-sent events", "text/event-stream"},
		{"server-sent events with charset", "text/event-stream; charset=utf-8"},
		{"chunked JSON lines", "application/x-ndjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				fmt.Fprint(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				fmt.Fprint(w, "data: two\n\n")
			}))
			t.Cleanup(up.Close)
			h, _ := setup(t, nil, "", Config{Upstream: mustURL(t, up.URL)})
			front := httptest.NewServer(h)
			t.Cleanup(front.Close)

			resp, err := http.Get(front.URL + "/api/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			first := make(chan string, 1)
			go func() {
				line, _ := br.ReadString('\n')
				first <- line
			}()
			select {
			case line := <-first:
				if line != "data: one\n" {
					t.Fatalf("first line %q, want %q", line, "data: one\n")
				}
			case <-time.After(stuck):
				close(release)
				t.Fatal("first event not received before the upstream finished: the response is buffered")
			}
			close(release)
			rest, err := io.ReadAll(br)
			if err != nil || string(rest) != "\ndata: two\n\n" {
				t.Errorf("rest %q, %v; want the second event", rest, err)
			}
		})
	}
}

// TestWebSocketUpgrade exchanges bytes through the proxy with an upstream
// that hijacks the connection on "Upgrade: websocket".
func TestWebSocketUpgrade(t *testing.T) {
	t.Parallel()
	type seen struct{ auth, cookie, key string }
	got := make(chan seen, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", http.StatusBadRequest)
			return
		}
		got <- seen{r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get("Sec-Websocket-Key")}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		_, _ = io.Copy(conn, brw) // echo until the client closes
	}))
	t.Cleanup(up.Close)
	h, e := setup(t, nil, "", Config{Upstream: mustURL(t, up.URL), IsBFFCookie: isBFF})
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)

	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(stuck))
	fmt.Fprint(conn, "GET /api/ws HTTP/1.1\r\nHost: app.example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: __Host-bff=s; theme=dark\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read upgrade response: %v (errors %v)", err, e.get())
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101 (errors %v)", resp.StatusCode, e.get())
	}
	for _, msg := range []string{"ping", "pong pong"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q, %v; want %q", buf, err, msg)
		}
	}
	s := <-got
	if s.auth != "Bearer tok" || s.cookie != "theme=dark" || s.key != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Errorf("upgrade request at the upstream: %+v; want the bearer, only theme=dark, the key", s)
	}
}

// TestOtherUpgradesRefused checks that an upstream cannot switch the
// connection to another protocol (h2c) even if it tries.
func TestOtherUpgradesRefused(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		brw.Flush()
	}))
	t.Cleanup(up.Close)
	h, e := setup(t, nil, "", Config{Upstream: mustURL(t, up.URL)})
	r := mustRequest(t, "GET", "/api/x", "Connection: Upgrade", "Upgrade: h2c")
	w, _ := serve(t, h, r)
	if w.Code == http.StatusSwitchingProtocols {
		t.Fatal("proxy switched to h2c")
	}
	if err := e.only(t); err == nil || w.Code != http.StatusBadGateway {
		t.Errorf("error %v, status %d; want an upstream error, 502", err, w.Code)
	}
}
