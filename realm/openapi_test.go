package realm

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/v1/[^"]*|/livez|/readyz|/healthz)", *([A-Za-z.]+)`)

// TestOpenAPIListsEveryRoute reads the routes the realm registers from its
// source and checks that /v1/openapi.json documents each, and documents
// nothing the realm does not serve.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	registered := map[string]bool{}
	authed := map[string]bool{} // routes wrapped in r.authed: they need a session
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
			registered[m[1]+" "+m[2]] = true
			authed[m[1]+" "+m[2]] = m[3] == "r.authed"
		}
	}
	if len(registered) < 10 {
		t.Fatalf("found %d routes in the source, the pattern is stale", len(registered))
	}
	r := startMarket(t)
	var doc struct {
		Paths map[string]map[string]struct {
			Security  []any          `json:"security"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}
	if code := get(t, r.URL()+"/v1/openapi.json", &doc); code != 200 {
		t.Fatalf("GET /v1/openapi.json = %d", code)
	}
	documented := map[string]bool{}
	var untrue []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			// The document must say which routes need a session, and
			// that those answer 401 and 403.
			_, has401 := op.Responses["401"]
			_, has403 := op.Responses["403"]
			if registered[key] && (authed[key] != (len(op.Security) > 0) || authed[key] != (has401 && has403)) {
				untrue = append(untrue, key)
			}
		}
	}
	sort.Strings(untrue)
	if len(untrue) > 0 {
		t.Errorf("OpenAPI document: security or 401/403 responses disagree with the routes' wrappers for %v", untrue)
	}
	var missing, extra []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("OpenAPI document: routes not documented %v; documented but not served %v (edit apiOperations in openapi.go)", missing, extra)
	}
}
