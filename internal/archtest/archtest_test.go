package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/zerorealm/zerorealm"

// domains are the packages between realm and the shared layers. They never
// import each other: realm wires them, which keeps each one testable alone
// and stops a change in one from rippling through the others.
var domains = []string{"avatar", "biometrics", "trust", "assets", "twin", "scenes", "agents"}

// domainArrows are the few imports between domains the architecture
// writes down, each with its reason; every other pair stays forbidden.
var domainArrows = map[string]map[string]string{
	"agents": {
		"trust": "an agent's trust has a person's states (trusted, step-up, suspended) and the same injectable clock; trust imports no domain, so the arrow makes no cycle",
	},
}

// forbidden maps a package pattern to the imports it must not have, each with
// the reason. "x/..." matches x and everything below it.
func forbidden() map[string]map[string]string {
	rules := map[string]map[string]string{
		"realm/...": {
			"cmd/...":           "cmd is the binary's entry point; the realm is a library that cmd drives",
			"internal/natsconf": natsconfWhy,
		},
		"policy/...": {
			"realm/...":   "policy sits below the realm; the realm asks it for decisions",
			"clients/...": "policy is server-side; clients never share its code",
		},
		"internal/...": {
			"realm/...":  "internal packages are plumbing below every domain; importing the realm would make a cycle of layers",
			"policy/...": "plumbing does not decide; decisions are policy's, called by domains and the realm",
			"cmd/...":    "cmd is the binary's entry point",
		},
		"internal/ident": {
			"internal/...": "ident is the id alphabet every domain shares; a leaf, so that no domain pulls plumbing in through it",
		},
		"internal/eip712": {
			"internal/...": "eip712 is the one EIP-712 encoder the asset and twin signatures share; a leaf, so that the signature packages pull nothing else in through it",
		},
		"internal/tracing": {
			"internal/...": "tracing is the OpenTelemetry plumbing the realm, policy and the gateway share; a leaf, so that tracing a call never pulls in what it traces",
		},
		"internal/problem": {
			"internal/...": "problem is how every domain says what a client may be told of a failure; a leaf, so that no domain pulls plumbing in through it",
		},
		"internal/clock": {
			"internal/...": "clock is the one clock every domain and part is given; a leaf, so that taking a clock never pulls plumbing in",
		},
		"internal/risk": {
			"internal/...": "risk is the one vocabulary of command risk that twin, scenes and agents share; a leaf, so that no domain pulls plumbing in through it",
		},
		"internal/cpuload": {
			"internal/...": "cpuload reads the process's and the machine's CPU for admission; a leaf, so that measuring load pulls nothing in",
		},
		"internal/gctarget": {
			"internal/...": "gctarget moves the collector's target by what collecting costs; a leaf, so that tuning the runtime pulls nothing in",
		},
		"internal/cgroupmem": {
			"internal/...": "cgroupmem reads the control group's memory limit for the runtime; a leaf, so that sizing memory pulls nothing in",
		},
		"internal/netstamp": {
			"internal/...": "netstamp reads the kernel's receive stamps beneath the realm's sockets; a leaf, so that the listener pulls nothing in",
		},
		"internal/cork": {
			"internal/...": "cork holds a connection's writes beneath the realm's sockets; a leaf, so that the listener pulls nothing in",
		},
		"internal/keyedmac": {
			"internal/...": "keyedmac is the one MAC construction the store and the realm share; a leaf, so that the store never depends on what sits above it",
		},
		"avatar/session/revocation": {
			"internal/store": "a revocation must take effect while the store cannot be reached: the broadcast speaks core NATS only, and stores through the function its caller passes",
		},
		"clients/...": {
			"realm/...":    "clients talk to a realm over the wire and must work against any realm that speaks the protocol",
			"internal/...": "clients never depend on server internals",
			"policy/...":   "clients never depend on server internals",
		},
	}
	for _, d := range domains {
		r := map[string]string{
			"realm/...": "domains never import the realm: it is the composition root that imports them",
			"cmd/...":   "cmd is the binary's entry point",
		}
		for _, other := range domains {
			if _, allowed := domainArrows[d][other]; other != d && !allowed {
				r[other+"/..."] = "domains do not import each other; the realm wires them"
			}
		}
		r["internal/natsconf"] = natsconfWhy
		rules[d+"/..."] = r
		rules["internal/..."][d+"/..."] = "plumbing sits below every domain"
		rules["policy/..."][d+"/..."] = "policy sits below the domains that call it"
		rules["clients/..."][d+"/..."] = "clients share wire types only, never server domains"
	}
	return rules
}

// natsconfWhy keeps the NATS operator's keys out of running servers.
const natsconfWhy = "natsconf issues NATS accounts and users from the operator's keys, an operator's tool run by cmd; a running realm only presents the credentials it is given"

// testOnly are packages that only tests may import, with the reason, and
// the few non-test importers allowed anyway, each with its own reason.
var testOnly = map[string]struct {
	why    string
	except map[string]string
}{
	"internal/natstest": {why: "it starts throwaway NATS servers for tests; production code gets its connection from internal/natsembed",
		except: map[string]string{
			"realm/realmtest":          "the realm's test scaffolding waits for the refusals a NATS server records; it is imported only by tests",
			"realm/realmtest/nodes":    "it starts the NATS clusters a test's realm nodes share; it is imported only by tests",
			"internal/store/storetest": "it opens a store on a throwaway NATS server; it is imported only by tests",
		}},
	"internal/store/storetest": {why: "it opens stores on throwaway NATS servers for tests; production code opens its store on the node's connection"},
	"internal/browsertest":     {why: "it drives a headless browser for tests; nothing in production starts a browser"},
	"internal/testlog": {why: "it writes a component's logs into a test's output; production code is given its logger",
		except: map[string]string{"realm/realmtest": "the realm's test scaffolding logs the nodes it runs into the test; it is imported only by tests"}},
	"internal/chaos":           {why: "it kills processes and fills disks to test a deployment; only its own tests run it"},
	"twin/gateway/gatewaytest": {why: "its drivers hold an actuator's moves for as long as a test says; a gateway in service drives real actuators or the simulator"},
	"realm/realmtest": {why: "it runs realm nodes for tests and speaks to them as a test client; production code starts a realm with realm.New",
		except: map[string]string{"realm/realmtest/nodes": "it starts realm nodes on realmtest for the test packages outside the realm; it is imported only by tests"}},
	"realm/realmtest/nodes": {why: "it starts realm nodes for the test packages outside the realm; production code starts a realm with realm.New"},
	"realm/internal/probe": {
		why: "it hands a running node's internals to tests; the realm sets it, and only the test scaffolding may read it",
		except: map[string]string{
			"realm":           "the composition root hands its parts to the probe, in wire_probe.go",
			"realm/realmtest": "the test scaffolding reads a node's internals through it",
		},
	},
	"internal/webauthntest": {
		why: "a software authenticator for tests; the realm never creates credentials",
		except: map[string]string{
			"cmd/zerorealm":   "the load tool signs synthetic avatars in with software passkeys, as a test does; it is a client of the realm, not part of it",
			"internal/chaos":  "the chaos harness's workload signs avatars in with software passkeys; it is a client of realm processes, imported only by its own tests",
			"realm/realmtest": "the realm's test scaffolding registers and signs avatars in with software passkeys; it is imported only by tests",
		},
	},
}

func matches(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

type pkgInfo struct {
	dir         string
	imports     map[string][]string // module-relative import => files (non-test)
	external    map[string][]string // other imports (standard library, modules) => files (non-test)
	testImports map[string][]string
	docComments []string // files that carry a package comment
	hasGo       bool
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// loadPackages parses every Go file of the module (imports and comments only).
func loadPackages(t *testing.T) map[string]*pkgInfo {
	t.Helper()
	root := moduleRoot(t)
	pkgs := map[string]*pkgInfo{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		rel = filepath.ToSlash(rel)
		info := pkgs[rel]
		if info == nil {
			info = &pkgInfo{dir: rel, imports: map[string][]string{}, external: map[string][]string{}, testImports: map[string][]string{}}
			pkgs[rel] = info
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("parse %s: %v", p, err)
			return nil
		}
		isTest := strings.HasSuffix(p, "_test.go")
		if !isTest {
			info.hasGo = true
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" && !isBuildConstraintOnly(f.Doc) {
				info.docComments = append(info.docComments, d.Name())
			}
		}
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			relImp, ok := strings.CutPrefix(ip, module+"/")
			if !ok {
				if !isTest {
					info.external[ip] = append(info.external[ip], d.Name())
				}
				continue
			}
			if isTest {
				info.testImports[relImp] = append(info.testImports[relImp], d.Name())
			} else {
				info.imports[relImp] = append(info.imports[relImp], d.Name())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func isBuildConstraintOnly(cg *ast.CommentGroup) bool {
	for _, c := range cg.List {
		if !strings.HasPrefix(c.Text, "//go:") && !strings.HasPrefix(c.Text, "// +build") {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestImportDirection(t *testing.T) {
	pkgs := loadPackages(t)
	rules := forbidden()
	checked := 0
	for _, dir := range sortedKeys(pkgs) {
		info := pkgs[dir]
		for _, imp := range sortedKeys(info.imports) {
			checked++
			if rule, ok := testOnly[imp]; ok {
				if _, allowed := rule.except[dir]; !allowed {
					t.Errorf("%s imports %s in %v: only tests may, because %s", dir, imp, info.imports[imp], rule.why)
				}
			}
			if matches("cmd/...", imp) {
				t.Errorf("%s imports %s in %v: nothing imports the binary", dir, imp, info.imports[imp])
			}
			if matches("realm/...", imp) && !matches("cmd/...", dir) && !matches("realm/...", dir) {
				t.Errorf("%s imports %s in %v: only cmd may import the realm, the composition root", dir, imp, info.imports[imp])
			}
			for _, from := range sortedKeys(rules) {
				if !matches(from, dir) {
					continue
				}
				for _, to := range sortedKeys(rules[from]) {
					if matches(to, imp) {
						t.Errorf("%s imports %s in %v: forbidden, because %s", dir, imp, info.imports[imp], rules[from][to])
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no in-module imports found: the walker is broken")
	}
}

// TestImportRulesCatchViolations feeds the rule set imports it must refuse,
// so a rule that silently stopped matching would fail here.
func TestImportRulesCatchViolations(t *testing.T) {
	rules := forbidden()
	bad := [][2]string{
		{"avatar", "assets"},
		{"twin/gateway", "realm"},
		{"internal/store", "scenes"},
		{"policy", "trust"},
		{"clients/vr", "internal/store"},
		{"scenes", "twin"},
		{"realm", "internal/natsconf"},
		{"twin/gateway", "internal/natsconf"},
		{"avatar/session/revocation", "internal/store"},
		{"agents", "twin"},
		{"agents", "assets"},
		{"trust", "agents"},
		{"agents", "realm"},
	}
	for _, pair := range bad {
		caught := false
		for from, tos := range rules {
			if !matches(from, pair[0]) {
				continue
			}
			for to := range tos {
				if matches(to, pair[1]) {
					caught = true
				}
			}
		}
		if !caught {
			t.Errorf("rules allow %s -> %s, want forbidden", pair[0], pair[1])
		}
	}
	if !matches("twin/...", "twin") || matches("twin/...", "twinkle") || !matches("twin/...", "twin/gateway") {
		t.Error("pattern matching is wrong")
	}
}

func TestEveryPackageHasDocGo(t *testing.T) {
	pkgs := loadPackages(t)
	n := 0
	for _, dir := range sortedKeys(pkgs) {
		info := pkgs[dir]
		if !info.hasGo {
			continue
		}
		n++
		switch {
		case len(info.docComments) == 0:
			t.Errorf("package %s has no package comment: write one in %s", dir, path.Join(dir, "doc.go"))
		case len(info.docComments) > 1 || info.docComments[0] != "doc.go":
			t.Errorf("package %s has package comments in %v: keep exactly one, in doc.go", dir, info.docComments)
		}
	}
	if n < 10 {
		t.Fatalf("found only %d packages: the walker is broken", n)
	}
}

// realmPart is the package of the realm's internal tree that dir belongs
// to ("edge" for realm/internal/edge and anything below it), or "".
func realmPart(dir string) string {
	rest, ok := strings.CutPrefix(dir, "realm/internal/")
	if !ok {
		return ""
	}
	part, _, _ := strings.Cut(rest, "/")
	return part
}

// sharedRealmPlumbing is the one package under realm/internal that the
// others may import: the HTTP plumbing every API shares.
const sharedRealmPlumbing = "edge"

// TestRealmPartsStandAlone keeps the realm's shape: realm is the
// composition root, and each concern under realm/internal is a package of
// its own that reaches the others only through interfaces the root wires.
// A part imports neither the root (a cycle of layers) nor a sibling
// (which would make two concerns one again); the shared plumbing imports
// no part at all.
func TestRealmPartsStandAlone(t *testing.T) {
	pkgs := loadPackages(t)
	parts := 0
	for _, dir := range sortedKeys(pkgs) {
		part := realmPart(dir)
		if part == "" {
			continue
		}
		parts++
		for _, imp := range sortedKeys(pkgs[dir].imports) {
			if why := realmPartImport(part, imp); why != "" {
				t.Errorf("%s imports %s in %v: %s", dir, imp, pkgs[dir].imports[imp], why)
			}
		}
	}
	if parts == 0 {
		t.Fatal("no package under realm/internal: the walker or the layout changed")
	}
	for _, bad := range [][2]string{{"edge", "realm"}, {"edge", "realm/internal/market"}, {"market", "realm/internal/twins"}} {
		if realmPartImport(bad[0], bad[1]) == "" {
			t.Errorf("realm/internal/%s importing %s passed the rule", bad[0], bad[1])
		}
	}
	if why := realmPartImport("market", "realm/internal/edge"); why != "" {
		t.Errorf("a part importing the shared plumbing was refused: %s", why)
	}
}

// realmPartImport says why the realm part may not import imp, or "".
func realmPartImport(part, imp string) string {
	switch other := realmPart(imp); {
	case imp == "realm":
		return "the realm is the composition root: its parts never import it, it passes them what they need"
	case other == "" || other == part:
		return ""
	case part == sharedRealmPlumbing:
		return "the shared plumbing sits below every part of the realm"
	case other != sharedRealmPlumbing:
		return "parts of the realm do not import each other; the root wires them through small interfaces"
	}
	return ""
}

// speaksNoHTTP are the services under the realm that must not depend on a
// transport: their callers (an HTTP API today) turn requests into calls
// and refusals into answers. The realm's HTTP plumbing counts as HTTP.
var speaksNoHTTP = map[string]string{
	"realm/internal/twins/command": "the twin command service decides and carries out commands for any transport; its API in realm/internal/twins speaks HTTP",
	"realm/internal/sessiontrust":  "the trust of sessions is evidence in and assessments out, fed by every transport; the parts that speak HTTP or WebSocket call it",
}

// httpImports are the imports that mean speaking HTTP.
var httpImports = []string{"net/http", "net/http/...", "github.com/gorilla/websocket", module + "/realm/internal/edge"}

func TestServicesSpeakNoHTTP(t *testing.T) {
	pkgs := loadPackages(t)
	for _, dir := range sortedKeys(speaksNoHTTP) {
		info := ruledPackage(t, pkgs, dir)
		if info == nil {
			continue
		}
		all := map[string][]string{}
		for imp, files := range info.external {
			all[imp] = files
		}
		for imp, files := range info.imports {
			all[module+"/"+imp] = files
		}
		for _, imp := range sortedKeys(all) {
			if why := httpImport(dir, imp); why != "" {
				t.Errorf("%s imports %s in %v: %s", dir, imp, all[imp], why)
			}
		}
	}
	if httpImport("realm/internal/twins/command", "net/http/httptest") == "" || httpImport("realm/internal/twins/command", module+"/realm/internal/edge") == "" {
		t.Error("the rule lets the command service import HTTP")
	}
	if why := httpImport("realm/internal/twins/command", "net/netip"); why != "" {
		t.Errorf("the rule refuses a package that is not HTTP: %s", why)
	}
}

// httpImport says why dir may not import imp, or "".
func httpImport(dir, imp string) string {
	for _, h := range httpImports {
		if matches(h, imp) {
			return "it speaks no HTTP, because " + speaksNoHTTP[dir]
		}
	}
	return ""
}

// standardLibraryOnly are the packages that import nothing beyond the
// standard library, and why.
var standardLibraryOnly = map[string]string{
	"internal/netstamp":  "it sits beneath the realm's sockets, TCP and UDP alike; the WebRTC library is wired to it in realm/internal/live/xr, so that neither depends on the other's version",
	"internal/cgroupmem": "it is read before anything else runs, to size the runtime's memory; what it pulled in would be sized after",
	"internal/cork":      "it sits beneath the realm's sockets, under whatever library writes to them",
}

func TestStandardLibraryOnly(t *testing.T) {
	pkgs := loadPackages(t)
	for _, dir := range sortedKeys(standardLibraryOnly) {
		info := ruledPackage(t, pkgs, dir)
		if info == nil {
			continue
		}
		for _, imp := range sortedKeys(info.external) {
			if !isStandardLibrary(imp) {
				t.Errorf("%s imports %s in %v: %s", dir, imp, info.external[imp], standardLibraryOnly[dir])
			}
		}
		for _, imp := range sortedKeys(info.imports) {
			t.Errorf("%s imports %s in %v: %s", dir, module+"/"+imp, info.imports[imp], standardLibraryOnly[dir])
		}
	}
	if isStandardLibrary("github.com/pion/transport/v5") || !isStandardLibrary("net/netip") {
		t.Error("isStandardLibrary tells the standard library from modules wrongly")
	}
}

// isStandardLibrary is whether imp is a standard library package: a
// module's path starts with a domain, which has a dot.
func isStandardLibrary(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

// ruledPackage is the package a rule names, or nil, said, when it has no
// Go files: a rule must move with its package.
func ruledPackage(t *testing.T, pkgs map[string]*pkgInfo, dir string) *pkgInfo {
	t.Helper()
	info := pkgs[dir]
	if info == nil || !info.hasGo {
		t.Errorf("%s is gone or empty: move its rule along with it", dir)
		return nil
	}
	return info
}
