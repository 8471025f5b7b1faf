// Package examplespa embeds the example single-page app that `bff dev`
// serves: a framework-free page (index.html, app.js, bff-client.js,
// style.css; no build step) that shows who is signed in, calls the demo API
// through the BFF and logs out. It runs under a strict Content-Security-Policy
// (no inline script or style, no eval), so the BFF can serve it with
// `script-src 'self'; style-src 'self'`.
//
// bff-client.js is the reusable part: frontend teams copy it into their own
// app (see README.md for React and Vue glue).
package examplespa

import (
	"embed"
	"io/fs"
)

// files is read-only; FS exposes it without an exported variable.
//
//go:embed index.html app.js bff-client.js style.css
var files embed.FS

// FS returns the app's files, rooted at the app root: index.html, app.js,
// bff-client.js and style.css. Serve it with http.FileServerFS under the
// app's root path; app.js derives the BFF endpoints from its own URL.
func FS() fs.FS {
	return files
}
