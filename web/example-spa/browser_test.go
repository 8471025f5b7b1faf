package examplespa

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// strictCSP is the policy the BFF serves the SPA with.
const strictCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// fakeBFF imitates the BFF's browser endpoints for one app mounted at root
// ("/" or "/shop/"), serves FS() there, and records what the SPA sent.
type fakeBFF struct {
	root string

	mu            sync.Mutex
	loggedIn      bool
	meStatus      int      // when not 0, /auth/me fails with it
	apiError      string   // when set, /api/whoami answers 401 with this upstream error code
	returnTos     []string // returnTo of each login
	logouts       int
	polls         int
	csrfFailures  []string // requests that lacked X-CSRF: 1
	authorization []string // requests that carried an Authorization header
}

func (f *fakeBFF) handler() http.Handler {
	mux := http.NewServeMux()
	p := strings.TrimSuffix(f.root, "/")
	mux.Handle(f.root, http.StripPrefix(p, http.FileServerFS(FS())))
	mux.HandleFunc("GET "+p+"/auth/login", func(w http.ResponseWriter, r *http.Request) {
		returnTo := r.URL.Query().Get("returnTo")
		f.mu.Lock()
		f.returnTos = append(f.returnTos, returnTo)
		f.loggedIn = true // the provider round trip, skipped
		f.mu.Unlock()
		if !strings.HasPrefix(returnTo, f.root) || strings.HasPrefix(returnTo, "//") {
			returnTo = f.root
		}
		http.Redirect(w, r, returnTo, http.StatusFound)
	})
	mux.HandleFunc("GET "+p+"/auth/me", f.xhr(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.URL.Query().Get("poll") == "1" {
			f.polls++
		}
		switch {
		case f.meStatus != 0:
			writeJSON(w, f.meStatus, map[string]any{"error": "store_unavailable", "message": "session store unavailable", "requestId": "req-42"})
		case !f.loggedIn:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"authenticated": false, "loginUrl": p + "/auth/login"})
		default:
			writeJSON(w, http.StatusOK, map[string]any{
				"authenticated": true,
				"user": map[string]any{
					"sub": "user-1", "name": "Ada Lovelace", "email": "ada@example.com",
					"preferred_username": "ada", "roles": []string{"admin", "user"},
				},
				"session":   map[string]any{"expiresIn": 3600, "idleExpiresIn": 1800},
				"logoutUrl": p + "/auth/logout",
			})
		}
	}))
	mux.HandleFunc("POST "+p+"/auth/logout", f.xhr(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.loggedIn = false
		f.logouts++
		f.mu.Unlock()
		// The provider's end-session endpoint, here on the same server.
		writeJSON(w, http.StatusOK, map[string]any{"endSessionUrl": "/provider/end_session?post_logout_redirect_uri=" + f.root})
	}))
	mux.HandleFunc("GET /provider/end_session", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("post_logout_redirect_uri"), http.StatusFound)
	})
	mux.HandleFunc(p+"/api/", f.xhr(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case !f.loggedIn:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthenticated", "message": "no session", "requestId": "req-1"})
		case f.apiError != "":
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": f.apiError, "message": "audience does not match"})
		default:
			writeJSON(w, http.StatusOK, map[string]any{"sub": "user-1", "roles": []string{"admin", "user"}, "method": r.Method, "path": r.URL.Path})
		}
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strictCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// xhr checks what the BFF checks on its fetch endpoints.
func (f *fakeBFF) xhr(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if r.Header.Get("X-CSRF") != "1" {
			f.csrfFailures = append(f.csrfFailures, r.Method+" "+r.URL.Path)
		}
		if r.Header.Get("Authorization") != "" {
			f.authorization = append(f.authorization, r.Method+" "+r.URL.Path)
		}
		f.mu.Unlock()
		next(w, r)
	}
}

func (f *fakeBFF) set(change func(f *fakeBFF)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// chromiumInstallHint tells how to get the browser the browser tests need.
const chromiumInstallHint = "install Debian's chromium (apt-get install chromium)"

// findChromium returns the path of a Chromium or Chrome binary on PATH, or
// "". (internal/devstack has the same function for its browser test.)
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browserContext starts a headless browser. Without one the test fails on
// CI (CI=true) and is skipped elsewhere, as it is with -short.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("headless browser test skipped in -short mode (CI=true runs it anyway)")
	}
	execPath := findChromium()
	if execPath == "" {
		if ci {
			t.Fatalf("chromium not found: %s", chromiumInstallHint)
		}
		t.Skipf("no Chromium or Chrome on PATH; %s to run this test (with CI=true a missing browser fails it)", chromiumInstallHint)
	}
	// Chromium leaves its singleton socket directory in TMPDIR when it is
	// killed; keep it and the profile in directories the test removes (after
	// the browser has exited: cleanups run last-in first-out).
	profile, tmp := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.Env("TMPDIR="+tmp),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil { // start it now
		t.Fatalf("start browser %s: %v", execPath, err)
	}
	return browserCtx
}

// collectConsole records the console of the tab of ctx until it is cancelled.
func collectConsole(ctx context.Context) func() []chromedp.ConsoleMessage {
	var (
		mu   sync.Mutex
		msgs []chromedp.ConsoleMessage
		done = make(chan struct{})
	)
	messages := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()
	return func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage(nil), msgs...)
	}
}

func TestBrowser(t *testing.T) {
	browserCtx := browserContext(t)
	for _, root := range []string{"/", "/shop/"} {
		t.Run("root "+root, func(t *testing.T) {
			f := &fakeBFF{root: root}
			srv := httptest.NewServer(f.handler())
			t.Cleanup(srv.Close)

			ctx, cancel := chromedp.NewContext(browserCtx) // a new tab
			t.Cleanup(cancel)
			if err := chromedp.Do(ctx); err != nil {
				t.Fatalf("open tab: %v", err)
			}
			console := collectConsole(ctx)

			do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
				t.Helper()
				if err := chromedp.Do(ctx, actions...); err != nil {
					t.Fatalf("%s: %v\nconsole: %v", step, err, console())
				}
			}
			text := func(id string) string {
				t.Helper()
				s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
				if err != nil {
					t.Fatalf("read #%s: %v", id, err)
				}
				return strings.TrimSpace(s)
			}
			visible := func(id string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.ID(id)) }
			click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }

			// Signed out: the logged-out view, nothing else.
			do("load signed out", chromedp.Navigate(srv.URL+root), visible("logged-out"), chromedp.WaitNotVisible(chromedp.ID("logged-in")))

			// Log in: a full-page round trip back to the page we were on.
			do("log in", click("login"), visible("logged-in"), visible("user-name"))
			if got := text("user-name"); got != "Ada Lovelace" {
				t.Errorf("#user-name = %q, want %q", got, "Ada Lovelace")
			}
			if got := text("user-email"); got != "ada@example.com" {
				t.Errorf("#user-email = %q, want %q", got, "ada@example.com")
			}
			if got := text("user-roles"); got != "admin, user" {
				t.Errorf("#user-roles = %q, want %q", got, "admin, user")
			}

			// Call the API through the BFF.
			do("call api", click("call-api"), chromedp.WaitVisible(chromedp.CSS("#api-result:not(:empty)")))
			var answer map[string]any
			if err := json.Unmarshal([]byte(text("api-result")), &answer); err != nil {
				t.Fatalf("#api-result is not JSON: %v", err)
			}
			if answer["sub"] != "user-1" || answer["path"] != root+"api/whoami" {
				t.Errorf("#api-result = %v, want sub user-1 and path %sapi/whoami", answer, root)
			}

			// An upstream 401 that is not the BFF's "unauthenticated" keeps the session.
			f.set(func(f *fakeBFF) { f.apiError = "invalid_token" })
			do("upstream 401", click("call-api"), chromedp.WaitVisible(chromedp.CSS("#status:not(:empty)")), visible("logged-in"))
			if got := text("status"); !strings.Contains(got, "401") {
				t.Errorf("#status after an upstream 401 = %q, want it to mention 401", got)
			}
			f.set(func(f *fakeBFF) { f.apiError = "" })

			// The session ends on the server: the next API call shows the logged-out view.
			f.set(func(f *fakeBFF) { f.loggedIn = false })
			do("session gone", click("call-api"), visible("logged-out"), chromedp.WaitNotVisible(chromedp.ID("logged-in")))
			if got := text("status"); !strings.Contains(got, "session has ended") {
				t.Errorf("#status after the session ended = %q, want a session-ended message", got)
			}

			// Log in again, then out: back to the app root, signed out.
			do("log in again", click("login"), visible("logged-in"))
			do("log out", click("logout"), visible("logged-out"))

			// The BFF is down: an error with its request ID, and a way to log in.
			f.set(func(f *fakeBFF) { f.meStatus = http.StatusServiceUnavailable })
			do("me fails", chromedp.Navigate(srv.URL+root), visible("logged-out"), chromedp.WaitVisible(chromedp.CSS("#status:not(:empty)")))
			if got := text("status"); !strings.Contains(got, "req-42") {
				t.Errorf("#status after a failed /auth/me = %q, want the request ID req-42", got)
			}

			f.mu.Lock()
			defer f.mu.Unlock()
			for i, rt := range f.returnTos {
				if rt != root {
					t.Errorf("login %d: returnTo = %q, want %q", i, rt, root)
				}
			}
			if f.logouts != 1 {
				t.Errorf("logouts = %d, want 1", f.logouts)
			}
			if len(f.csrfFailures) > 0 {
				t.Errorf("requests without X-CSRF: 1: %v", f.csrfFailures)
			}
			if len(f.authorization) > 0 {
				t.Errorf("the browser sent an Authorization header: %v", f.authorization)
			}
			for _, m := range console() {
				if m.IsException() || strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy") {
					t.Errorf("browser console: %s", fmt.Sprint(m))
				}
			}
		})
	}
}
