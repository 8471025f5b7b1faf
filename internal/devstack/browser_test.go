package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumInstallHint tells how to get the browser the browser tests need.
const chromiumInstallHint = "install Debian's chromium (apt-get install chromium)"

// browserTimeout bounds the whole browser flow; browserStartTimeout bounds
// the start of Chromium and the debugging steps after a failure as well.
const (
	browserTimeout      = 60 * time.Second
	browserStartTimeout = 90 * time.Second
)

// findChromium returns the path of a Chromium or Chrome binary on PATH, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// requireChromium returns the browser to run, or ends the test: on CI
// (CI=true) a missing browser is a failure, elsewhere the test is skipped,
// as it is with -short.
func requireChromium(t *testing.T) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if testing.Short() && !ci {
		t.Skip("headless browser test skipped in -short mode (CI=true runs it anyway)")
	}
	p := findChromium()
	if p == "" {
		if ci {
			t.Fatalf("chromium not found: %s", chromiumInstallHint)
		}
		t.Skipf("no chromium, chromium-browser or google-chrome on PATH; %s to run this test (with CI=true a missing browser fails it)", chromiumInstallHint)
	}
	return p
}

// startChromium starts a headless Chromium with a fresh profile and returns
// the context of its first tab. The browser lives until the test ends, at
// most browserStartTimeout.
func startChromium(t *testing.T, execPath string) context.Context {
	t.Helper()
	// Cleanups run last-in first-out: the directories are removed after the
	// browser has exited. Chromium keeps its singleton socket in TMPDIR.
	profile, tmp := t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), browserStartTimeout)
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
		t.Fatalf("start %s: %v", execPath, err)
	}
	return browserCtx
}

// pageLog collects what a tab reports: console.error calls, uncaught
// exceptions, browser log entries, and Content Security Policy violations.
type pageLog struct {
	mu                   sync.Mutex
	errors, csp, entries []string
}

// cspListener reports every CSP violation of every document of the tab on
// the console, so that none goes unnoticed whatever the browser logs. It is
// injected over the DevTools protocol, which the page's CSP does not limit.
const cspListener = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' on ' + e.documentURI + ' (' + e.disposition + ')');
});`

func isCSPMessage(s string) bool {
	return strings.Contains(s, "CSP violation") || strings.Contains(s, "Content Security Policy") || strings.Contains(s, "Content-Security-Policy")
}

// watch starts collecting the tab's messages.
func (l *pageLog) watch(t *testing.T, ctx context.Context) {
	t.Helper()
	err := chromedp.Listen(ctx, func(ev any) {
		var msg string
		var isError bool
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				switch {
				case a.Type == runtime.RemoteObjectTypeString:
					var s string
					if json.Unmarshal(a.Value, &s) == nil {
						parts = append(parts, s)
						continue
					}
				case a.Description != "":
					parts = append(parts, a.Description)
					continue
				}
				parts = append(parts, string(a.Value))
			}
			msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
			isError = ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			msg = fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text)
			isError = true
		case *cdplog.EventEntryAdded:
			e := ev.Entry
			msg = fmt.Sprintf("log %s/%s: %s", e.Source, e.Level, e.Text)
			if e.URL != "" {
				msg += " (" + e.URL + ")"
			}
			isError = e.Level == cdplog.EntryLevelError
		default:
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.entries = append(l.entries, msg)
		if isError {
			l.errors = append(l.errors, msg)
		}
		if isCSPMessage(msg) {
			l.csp = append(l.csp, msg)
		}
	})
	if err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspListener}); err != nil {
		t.Fatalf("add the CSP listener: %v", err)
	}
}

func (l *pageLog) snapshot() (errors, csp, entries []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errors), slices.Clone(l.csp), slices.Clone(l.entries)
}

// dumpPage saves a screenshot of the tab and logs its path, its URL and its
// HTML, to debug a failed step.
func dumpPage(t *testing.T, tabCtx context.Context, l *pageLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tabCtx, 10*time.Second)
	defer cancel()
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
		t.Logf("page URL: %s", loc)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil { // quality 100 is a PNG
		t.Logf("screenshot failed: %v", err)
	} else {
		// ArtifactDir is a t.TempDir unless go test runs with -artifacts,
		// which keeps it (under -outputdir).
		name := filepath.Join(t.ArtifactDir(), "screenshot.png")
		if err := os.WriteFile(name, png, 0o644); err != nil {
			t.Logf("save screenshot: %v", err)
		} else {
			t.Logf("screenshot: %s (kept when go test runs with -artifacts)", name)
		}
	}
	if html, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); err != nil {
		t.Logf("outerHTML failed: %v", err)
	} else {
		t.Logf("page outerHTML:\n%s", html)
	}
	_, _, entries := l.snapshot()
	t.Logf("browser console and log:\n  %s", strings.Join(entries, "\n  "))
}

// atAppRoot reports whether loc is the root page of the app at base,
// whatever its query.
func atAppRoot(base, loc string) bool {
	u, err := url.Parse(loc)
	return err == nil && u.Scheme+"://"+u.Host == base && u.Path == "/" && u.Fragment == ""
}

// TestBrowserEndToEnd logs in, calls the API and logs out with the example
// SPA in a real headless Chromium, against the real provider, BFF and demo
// API.
func TestBrowserEndToEnd(t *testing.T) {
	execPath := requireChromium(t)
	st := startStack(t, Options{})
	var alice struct{ sub, email string }
	for _, u := range st.Users {
		if u.Username == "alice" {
			alice.sub, alice.email = u.ID, u.Email
		}
	}
	if alice.sub == "" {
		t.Fatal("no demo user alice")
	}

	tab := startChromium(t, execPath)
	var plog pageLog
	plog.watch(t, tab)
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()

	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		dumpPage(t, tab, &plog)
		t.FailNow()
	}
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			fail("%s: %v", step, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
		if err != nil {
			fail("read #%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	// until waits for a JavaScript condition on the current page.
	until := func(step, cond string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			fail("%s: waiting for %s: %v", step, cond, err)
		}
	}
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	visible := func(id string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.ID(id)) }
	click := func(id string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.ID(id)) }
	start := time.Now()

	// Signed out, the app offers to log in.
	do("open the app", chromedp.Navigate(st.BFFURL+"/"), visible("login"))

	// The login button leads to the provider's form.
	do("go to the provider", click("login"), visible("username"), visible("password"))
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasPrefix(loc, st.IssuerURL+"/") {
		fail("login form at %q (%v), want the provider %s", loc, err, st.IssuerURL)
	}
	do("log in at the provider",
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), "alice"),
		click("login-submit"),
		visible("user-name"),
	)
	until("show the user", `document.getElementById('user-name').textContent.trim() === 'Alice Admin'`)
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || loc != st.BFFURL+"/" {
		t.Errorf("after login the page is at %q (%v), want %s/ (the page the login started from)", loc, err, st.BFFURL)
	}
	if got := text("user-email"); got != alice.email {
		t.Errorf("#user-email = %q, want %q", got, alice.email)
	}
	if got := text("user-roles"); !slices.Contains(strings.Split(got, ", "), "admin") {
		t.Errorf("#user-roles = %q, want it to contain admin", got)
	}

	// The API answers through the BFF with alice's token.
	do("call the API", click("call-api"))
	until("show the API answer", fmt.Sprintf(`(() => { const s = document.getElementById('api-result').textContent; return s.includes(%s) && s.includes('"admin"'); })()`, js(alice.sub)))
	var answer struct {
		Sub   string   `json:"sub"`
		Roles []string `json:"roles"`
	}
	if raw := text("api-result"); json.Unmarshal([]byte(raw), &answer) != nil || answer.Sub != alice.sub || !slices.Contains(answer.Roles, "admin") {
		t.Errorf("#api-result = %s, want sub %s and role admin", raw, alice.sub)
	}
	if s := text("status"); s != "" {
		t.Errorf("#status after the API call = %q, want it empty", s)
	}

	// The session cookie is there, and out of reach of scripts.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{st.BFFURL + "/"}})
	if err != nil {
		fail("get cookies: %v", err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		t.Logf("cookie for %s: %s (path %s, httpOnly %v, secure %v, sameSite %q, session %v)", st.BFFURL, c.Name, c.Path, c.HTTPOnly, c.Secure, c.SameSite, c.Session)
		if c.Name == "bff" {
			session = c
		}
	}
	switch {
	case session == nil:
		t.Errorf("no session cookie bff for %s", st.BFFURL)
	case !session.HTTPOnly:
		t.Errorf("session cookie bff is not HttpOnly: %+v", session)
	}
	docCookie, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		fail("read document.cookie: %v", err)
	}
	for c := range strings.SplitSeq(docCookie, ";") {
		if name, _, _ := strings.Cut(strings.TrimSpace(c), "="); name == "bff" {
			t.Errorf("document.cookie shows the session cookie: %q", docCookie)
		}
	}
	if docCookie != "" {
		t.Logf("document.cookie on the app: %q", docCookie)
	}

	// Logout goes through the provider's end session and back to the app
	// root, signed out.
	do("log out", click("logout"), visible("login"))
	// The provider passes the logout request's state back in the query
	// (OpenID Connect RP-Initiated Logout), so only the path is checked.
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !atAppRoot(st.BFFURL, loc) {
		t.Errorf("after logout the page is at %q (%v), want the app root %s/", loc, err, st.BFFURL)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/auth/me', {headers: {'X-CSRF': '1'}}).then((r) => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		fail("fetch /auth/me after logout: %v", err)
	}
	if status != 401 {
		t.Errorf("/auth/me after logout = %d, want 401", status)
	}
	t.Logf("browser flow took %v", time.Since(start).Round(time.Millisecond))

	errs, csp, _ := plog.snapshot()
	for _, e := range errs {
		t.Logf("browser error: %s", e)
	}
	for _, e := range csp {
		t.Errorf("CSP violation in the browser: %s", e)
	}
	for _, e := range errs {
		if strings.HasPrefix(e, "uncaught exception") {
			t.Errorf("browser: %s", e)
		}
	}
	if t.Failed() {
		dumpPage(t, tab, &plog)
	}
}
