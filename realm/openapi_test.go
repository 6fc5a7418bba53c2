package realm

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/realm/internal/apidoc"
)

var routePattern = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/v1/[^"]*|/livez|/readyz|/healthz)", *([A-Za-z.]+)`)

// apiDocParameter is what the tests read of one parameter.
type apiDocParameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

// apiDocOperation is what the tests read of one operation.
type apiDocOperation struct {
	OperationID string            `json:"operationId"`
	Security    []any             `json:"security"`
	Parameters  []apiDocParameter `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

// fetchAPIDocument reads a document the realm serves, and keeps a copy in
// $ZR_API_DOCS when it is set, for CI to lint exactly what the realm serves.
func fetchAPIDocument(t *testing.T, r *Realm, name string) []byte {
	t.Helper()
	resp, err := http.Get(r.URL() + "/v1/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/%s = %d, %v", name, resp.StatusCode, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET /v1/%s: Content-Type %q", name, ct)
	}
	if dir := os.Getenv("ZR_API_DOCS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return body
}

// TestOpenAPIListsEveryRoute reads the routes the realm registers from its
// source and checks that /v1/openapi.json documents each, and documents
// nothing the realm does not serve; that each operation has an
// operationId, a security requirement that agrees with the route's
// wrapper and with what the server answers without credentials, problem
// responses, and schemas that exist for its body and its answers (and
// that the public reads' answers follow).
func TestOpenAPIListsEveryRoute(t *testing.T) {
	// The routes are registered by the realm and by its API packages.
	files, _ := filepath.Glob("*.go")
	subpackages, _ := filepath.Glob("internal/*/*.go")
	nested, _ := filepath.Glob("internal/*/*/*.go") // a part's own sub-packages
	files = append(files, subpackages...)
	files = append(files, nested...)
	registered := map[string]bool{}
	authed := map[string]bool{} // routes wrapped in edge's Authed or EndingSession: they need a session
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
			// A person's session (EndingSession: one that may be ending),
			// or (AuthedOrAgent, AgentAuthed) an agent's DPoP credentials:
			// either way 401 and 403.
			authed[m[1]+" "+m[2]] = strings.HasSuffix(m[3], ".Authed") || strings.HasSuffix(m[3], ".EndingSession") ||
				strings.HasSuffix(m[3], ".AuthedOrAgent") || strings.HasSuffix(m[3], ".AgentAuthed")
		}
	}
	if len(registered) < 10 {
		t.Fatalf("found %d routes in the source, the pattern is stale", len(registered))
	}
	r := startMarket(t)
	var doc struct {
		Paths      map[string]map[string]apiDocOperation `json:"paths"`
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(fetchAPIDocument(t, r, "openapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	operationIDs := map[string]string{}
	var untrue, flaws []string
	flaw := func(key, format string) { flaws = append(flaws, key+": "+format) }
	schemaExists := func(schema map[string]any) bool {
		ref, _ := schema["$ref"].(string)
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		return ok && doc.Components.Schemas[name] != nil
	}
	// A body that is a C2SP signed note is text, described in words.
	const noteType = "text/plain; charset=utf-8"
	isNote := func(content map[string]struct {
		Schema map[string]any `json:"schema"`
	}) bool {
		n, ok := content[noteType]
		what, _ := n.Schema["description"].(string)
		return ok && len(content) == 1 && n.Schema["type"] == "string" && strings.Contains(what, "signed note")
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			documented[key] = true
			// The document must say which routes need a session, and
			// that those answer 401 and 403; public ones say security: [].
			_, has401 := op.Responses["401"]
			_, has403 := op.Responses["403"]
			if registered[key] && (op.Security == nil || authed[key] != (len(op.Security) > 0) || authed[key] != (has401 && has403)) {
				untrue = append(untrue, key)
			}
			if op.OperationID == "" {
				flaw(key, "no operationId")
			} else if other, dup := operationIDs[op.OperationID]; dup {
				flaw(key, "operationId "+op.OperationID+" is also "+other)
			}
			operationIDs[op.OperationID] = key
			if op.RequestBody != nil && !schemaExists(op.RequestBody.Content["application/json"].Schema) && !isNote(op.RequestBody.Content) {
				flaw(key, "request body is not a component schema")
			}
			success := 0
			for status, resp := range op.Responses {
				switch {
				case status == "503" && (path == "/livez" || path == "/readyz" || path == "/healthz"):
					// A health endpoint's "not ready" is its own JSON, the
					// shape load balancers and monitors read either way.
					if !schemaExists(resp.Content["application/json"].Schema) {
						flaw(key, "503 answers no component schema")
					}
				case status == "default" || status >= "400":
					if !schemaExists(resp.Content["application/problem+json"].Schema) {
						flaw(key, status+" is not a problem+json Problem")
					}
				case status == "101" || status == "204":
					success++
				default:
					success++
					if !schemaExists(resp.Content["application/json"].Schema) && !isNote(resp.Content) {
						flaw(key, status+" answers no component schema")
					}
				}
			}
			if success == 0 || op.Responses["default"].Content == nil {
				flaw(key, "needs a success response and a default problem")
			}
		}
	}
	// The server agrees: without credentials every operation the document
	// secures answers 401, and no public one does.
	for path, ops := range doc.Paths {
		for method, op := range ops {
			url := r.URL() + regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
			req, err := http.NewRequest(strings.ToUpper(method), url, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if (resp.StatusCode == http.StatusUnauthorized) != (len(op.Security) > 0) {
				flaw(strings.ToUpper(method)+" "+path, "without credentials answers "+strconv.Itoa(resp.StatusCode)+", but its security is "+fmt.Sprint(op.Security))
			}
		}
	}
	// The public reads answer what their schemas say: every required
	// member, and no member the schema does not name.
	for path, ops := range doc.Paths {
		op, ok := ops["get"]
		needsParams := slices.ContainsFunc(op.Parameters, func(p apiDocParameter) bool { return p.Required })
		if !ok || len(op.Security) > 0 || strings.Contains(path, "{") || needsParams {
			continue
		}
		var answer map[string]json.RawMessage
		if code := get(t, r.URL()+path, &answer); code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, code)
		}
		ref, _ := op.Responses["200"].Content["application/json"].Schema["$ref"].(string)
		schema := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for _, name := range required {
			if _, ok := answer[name.(string)]; !ok {
				flaw("GET "+path, "the answer lacks the required member "+name.(string))
			}
		}
		for name := range answer {
			if _, ok := props[name]; !ok {
				flaw("GET "+path, "the answer has the undocumented member "+name)
			}
		}
	}
	// Idempotency-Key is declared exactly where apiOperations say it is
	// read, and required where the handler refuses a request without it.
	for key, want := range apidoc.IdempotencyKeys() {
		method, path, _ := strings.Cut(key, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		i := slices.IndexFunc(op.Parameters, func(p apiDocParameter) bool { return p.In == "header" && p.Name == "Idempotency-Key" })
		switch {
		case (i >= 0) != (want != apidoc.NoIdempotencyKey):
			flaw(key, "Idempotency-Key declared wrongly")
		case i >= 0 && op.Parameters[i].Required != (want == apidoc.IdempotencyKeyRequired):
			flaw(key, "Idempotency-Key required wrongly")
		}
	}
	// Every schema says what it holds: a bare object makes generators
	// emit an empty type.
	for name, s := range doc.Components.Schemas {
		if s["type"] == "object" && s["properties"] == nil && s["additionalProperties"] == nil {
			flaw("#/components/schemas/"+name, "a bare object")
		}
	}
	sort.Strings(untrue)
	sort.Strings(flaws)
	if len(untrue) > 0 {
		t.Errorf("OpenAPI document: security or 401/403 responses disagree with the routes' wrappers for %v", untrue)
	}
	if len(flaws) > 0 {
		t.Errorf("OpenAPI document:\n%s", strings.Join(flaws, "\n"))
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
		t.Fatalf("OpenAPI document: routes not documented %v; documented but not served %v (edit apiOperations in realm/internal/apidoc/openapi.go)", missing, extra)
	}
}

// TestAsyncAPIMatchesProtocol checks /v1/asyncapi.json against the realm
// WebSocket section of clients/PROTOCOL.md: every message type and close
// code the prose names is in the document, and the document has no
// message the prose does not describe.
func TestAsyncAPIMatchesProtocol(t *testing.T) {
	prose, err := os.ReadFile("../clients/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(prose)
	start := strings.Index(section, "## The realm WebSocket")
	if start < 0 {
		t.Fatal("PROTOCOL.md has no realm WebSocket section")
	}
	section = section[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	wantTypes := map[string]bool{}
	for _, m := range regexp.MustCompile(`\{"type": "([a-z.-]+)"`).FindAllStringSubmatch(section, -1) {
		wantTypes[m[1]] = true
	}
	wantCodes := map[string]bool{}
	for _, m := range regexp.MustCompile("`([14][0-9]{3})`").FindAllStringSubmatch(section, -1) {
		wantCodes[m[1]] = true
	}
	if len(wantTypes) < 10 || len(wantCodes) < 6 {
		t.Fatalf("read %d message types and %d close codes from PROTOCOL.md: the patterns are stale", len(wantTypes), len(wantCodes))
	}

	r := startMarket(t)
	var doc struct {
		AsyncAPI string `json:"asyncapi"`
		Channels map[string]struct {
			Address    string `json:"address"`
			CloseCodes []struct {
				Code int `json:"code"`
			} `json:"x-close-codes"`
		} `json:"channels"`
		Components struct {
			Messages map[string]struct {
				ContentType string `json:"contentType"`
				Payload     struct {
					Properties struct {
						Type struct {
							Const string `json:"const"`
						} `json:"type"`
					} `json:"properties"`
				} `json:"payload"`
			} `json:"messages"`
		} `json:"components"`
	}
	if err := json.Unmarshal(fetchAPIDocument(t, r, "asyncapi.json"), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.AsyncAPI, "3.") || doc.Channels["realm"].Address != "/v1/realm" {
		t.Fatalf("asyncapi %q, realm channel at %q", doc.AsyncAPI, doc.Channels["realm"].Address)
	}
	gotTypes := map[string]bool{}
	for name, m := range doc.Components.Messages {
		if m.ContentType == "application/json" {
			if m.Payload.Properties.Type.Const == "" {
				t.Errorf("message %s: no type const", name)
			}
			gotTypes[m.Payload.Properties.Type.Const] = true
		}
	}
	gotCodes := map[string]bool{}
	for _, c := range doc.Channels["realm"].CloseCodes {
		gotCodes[strconv.Itoa(c.Code)] = true
	}
	if !maps.Equal(wantTypes, gotTypes) {
		t.Errorf("message types: PROTOCOL.md %v, AsyncAPI %v", slices.Sorted(maps.Keys(wantTypes)), slices.Sorted(maps.Keys(gotTypes)))
	}
	if !maps.Equal(wantCodes, gotCodes) {
		t.Errorf("close codes: PROTOCOL.md %v, AsyncAPI %v", slices.Sorted(maps.Keys(wantCodes)), slices.Sorted(maps.Keys(gotCodes)))
	}
}
