package realm

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/v1/[^"]*)"`)

// TestOpenAPIListsEveryRoute reads the routes the realm registers from its
// source and checks that /v1/openapi.json documents each, and documents
// nothing the realm does not serve.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	registered := map[string]bool{}
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
		}
	}
	if len(registered) < 10 {
		t.Fatalf("found %d routes in the source, the pattern is stale", len(registered))
	}
	r := startMarket(t)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if code := get(t, r.URL()+"/v1/openapi.json", &doc); code != 200 {
		t.Fatalf("GET /v1/openapi.json = %d", code)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
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
