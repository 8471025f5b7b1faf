package examplespa

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestFSHasEveryFile(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"index.html", "app.js", "bff-client.js", "style.css"} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Errorf("ReadFile(%q): %v", name, err)
			continue
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
}

func TestIndexReferencesAssets(t *testing.T) {
	t.Parallel()
	index := readFile(t, "index.html")
	for _, want := range []string{
		`<script type="module" src="app.js"></script>`,
		`<link rel="stylesheet" href="style.css">`,
		`<html lang="en">`,
	} {
		if !strings.Contains(index, want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
}

// TestElementIDs pins the element ids that app.js and the headless-browser
// tests rely on.
func TestElementIDs(t *testing.T) {
	t.Parallel()
	index := readFile(t, "index.html")
	app := readFile(t, "app.js")
	for _, id := range []string{"status", "logged-out", "login", "logged-in", "user-name", "user-email", "user-roles", "call-api", "api-result", "logout"} {
		if n := strings.Count(index, `id="`+id+`"`); n != 1 {
			t.Errorf("index.html has %d elements with id %q, want 1", n, id)
		}
		if !strings.Contains(app, `$('`+id+`')`) {
			t.Errorf("app.js does not look up #%s", id)
		}
	}
	for _, id := range []string{"logged-out", "logged-in"} {
		if !regexp.MustCompile(`<section id="` + id + `"[^>]*\shidden>`).MatchString(index) {
			t.Errorf("#%s is not hidden until the session is known", id)
		}
	}
}

// TestStrictCSP checks the files for what a strict CSP
// (script-src 'self'; style-src 'self') would block.
func TestStrictCSP(t *testing.T) {
	t.Parallel()
	index := readFile(t, "index.html")
	if regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`).MatchString(index) {
		t.Errorf("index.html has an inline script")
	}
	if regexp.MustCompile(`(?i)<script(?:\s[^>]*)?\ssrc="(?:https?:)?//`).MatchString(index) {
		t.Errorf("index.html loads a script from another origin")
	}
	if strings.Contains(index, "<style") {
		t.Errorf("index.html has an inline <style> element")
	}
	if regexp.MustCompile(`(?i)\sstyle=`).MatchString(index) {
		t.Errorf("index.html has a style attribute")
	}
	if regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(index) {
		t.Errorf("index.html has an inline event handler")
	}
	for _, name := range []string{"app.js", "bff-client.js"} {
		src := readFile(t, name)
		for _, banned := range []string{"eval(", "new Function(", "innerHTML", "insertAdjacentHTML", "document.write", "setAttribute('style'", ".style."} {
			if strings.Contains(src, banned) {
				t.Errorf("%s uses %s", name, banned)
			}
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(FS(), name)
	if err != nil {
		t.Fatalf("ReadFile(%q): %v", name, err)
	}
	return string(b)
}
