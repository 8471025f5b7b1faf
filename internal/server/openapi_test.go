package server

import (
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
)

// TestOpenAPIMatchesRouter keeps api/openapi.yaml true: every documented
// path and method is served, and every served route is documented.
func TestOpenAPIMatchesRouter(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatal("openapi.yaml must be OpenAPI 3.1")
	}

	s := newTestServer(t, testConfig(t, ""))
	served := map[string]bool{}
	param := regexp.MustCompile(`\{[^}]+\}$`)
	walk := func(r chi.Routes) {
		err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			if method == "*" || method == http.MethodOptions || method == http.MethodHead ||
				method == "CONNECT" || method == "TRACE" {
				return nil
			}
			served[method+" "+strings.TrimSuffix(route, "*")] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	walk(s.handler.(chi.Routes))
	walk(s.apps[0].router.(chi.Routes))
	// The API prefix and the SPA are mounted with r.Handle (all methods);
	// the document lists the methods a browser uses.
	for route := range served {
		if strings.HasSuffix(route, "/") && (strings.Contains(route, " /api/") || route[strings.Index(route, " ")+1:] == "/") {
			delete(served, route)
			prefix := route[strings.Index(route, " ")+1:]
			served["HANDLE "+prefix] = true
		}
	}

	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		base := param.ReplaceAllString(path, "")
		catchAll := base != path
		for method := range item.Operations() {
			if catchAll {
				documented["HANDLE "+base] = true
			} else {
				documented[method+" "+path] = true
			}
		}
	}
	var missing, undocumented []string
	for k := range documented {
		if !served[k] {
			missing = append(missing, k)
		}
	}
	for k := range served {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(undocumented)
	if len(missing) > 0 || len(undocumented) > 0 {
		t.Fatalf("openapi.yaml and router disagree:\n documented but not served: %v\n served but not documented: %v", missing, undocumented)
	}
	if !slices.Contains(keys(served), "GET /auth/me") {
		t.Fatalf("walk found no routes: %v", served)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
