package server

import (
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/bff-dev/bff/internal/proxy"
)

// noToken is the TokenSource of pages: never a user token.
type noToken struct{}

func (noToken) AccessToken(*http.Request) (string, bool, error) { return "", false, nil }

// spaHandler serves the app's pages: from the embedded FS given in Deps,
// from spa.dir, or proxied from spa.upstream (a dev server). Every page gets
// the app's Content-Security-Policy. Unknown paths without a file extension
// get index.html, so client-side routes survive a reload.
func (a *app) spaHandler() http.Handler {
	csp := a.cfg.SPA.ContentSecurityPolicy
	withCSP := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			h.ServeHTTP(w, r)
		})
	}
	if fsys, ok := a.s.deps.SPA[a.cfg.Name]; ok {
		return withCSP(a.fileServer(fsys))
	}
	if a.cfg.SPA.Dir != "" {
		return withCSP(a.fileServer(os.DirFS(a.cfg.SPA.Dir)))
	}
	if a.cfg.SPA.Upstream != "" {
		// The same hygiene as the APIs (no BFF cookie or CSRF header out,
		// no Set-Cookie for a BFF cookie back, path checks), without a token.
		// The whole request path, app prefix included, is appended to the
		// upstream URL, and every method passes (SSR form actions).
		up, _ := url.Parse(a.cfg.SPA.Upstream)
		u := a.cfg.ParsedURL()
		pages := proxy.New(proxy.Config{
			Prefix:             "/",
			Upstream:           up,
			Tokens:             noToken{},
			IsBFFCookie:        a.s.isBFFCookie,
			StripHeaders:       []string{a.cfg.CSRFHeader},
			OwnResponseHeaders: append(ownHeaders(), "Content-Security-Policy"),
			PublicHost:         u.Host,
			PublicProto:        u.Scheme,
			TrustedProxy:       a.s.cfg.TrustsProxy,
			Transport:          a.s.deps.UpstreamTransport,
			OnError:            a.s.proxyError,
		})
		return withCSP(pages)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.s.writeError(w, r, http.StatusNotFound, "not_found", "Not found.")
	})
}

func (a *app) fileServer(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			a.s.writeError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed.")
			return
		}
		rel := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, a.pathPrefix)), "/")
		if rel == "" || rel == "index.html" {
			a.serveIndex(w, r, fsys)
			return
		}
		if st, err := fs.Stat(fsys, rel); err == nil && !st.IsDir() {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + rel
			files.ServeHTTP(w, r2)
			return
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.s.writeError(w, r, http.StatusInternalServerError, "internal_error", "Cannot read the page.")
			return
		}
		if path.Ext(rel) != "" {
			a.s.writeError(w, r, http.StatusNotFound, "not_found", "Not found.")
			return
		}
		a.serveIndex(w, r, fsys)
	})
}

func (a *app) serveIndex(w http.ResponseWriter, r *http.Request, fsys fs.FS) {
	b, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		a.s.writeError(w, r, http.StatusNotFound, "not_found", "This app has no index.html.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
