package archtest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layoutDoc is where the realm's layout is drawn in words, and layoutHeading
// the section whose fenced block the test reads.
const (
	layoutDoc     = "docs/architecture.md"
	layoutHeading = "### The realm's layout in words"
)

// layoutEntry is one package of the drawing: the module's imports it may
// have ("x/..." is x and everything below it).
type layoutEntry struct {
	imports []string
	line    int
}

// readLayout parses the drawing: a line at the margin names a package; its
// indented "imports:" line lists what it may import, or says "nothing of
// the module".
func readLayout(t *testing.T) map[string]*layoutEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot(t), layoutDoc))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string]*layoutEntry{}
	var current *layoutEntry
	inSection, inBlock := false, false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			inSection = line == layoutHeading
		case !inSection:
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock
		case !inBlock || strings.TrimSpace(line) == "":
		case !strings.HasPrefix(line, " "):
			current = &layoutEntry{line: n}
			entries[strings.TrimSpace(line)] = current
		case current != nil:
			rest, ok := strings.CutPrefix(strings.TrimSpace(line), "imports:")
			if ok && strings.TrimSpace(rest) != "nothing of the module" {
				current.imports = append(current.imports, strings.Fields(rest)...)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return entries
}

// layoutImport says why the drawing does not let a package whose entry is
// e import imp, or "".
func layoutImport(e *layoutEntry, imp string) string {
	for _, pattern := range e.imports {
		if matches(pattern, imp) {
			return ""
		}
	}
	return "the drawing of the realm's layout does not list it among what the package may import: change the code, or the drawing with its reason"
}

// TestRealmLayoutIsTheDrawing holds the realm's packages to the drawing in
// words of docs/architecture.md: the reader of that page sees each package
// under realm/, what it owns and what it may import, and it stays true.
func TestRealmLayoutIsTheDrawing(t *testing.T) {
	pkgs := loadPackages(t)
	entries := readLayout(t)
	if len(entries) < 5 {
		t.Fatalf("found %d packages in the drawing of %s, section %q: the section or its format changed", len(entries), layoutDoc, layoutHeading)
	}
	for _, dir := range sortedKeys(pkgs) {
		if !pkgs[dir].hasGo || !matches("realm/...", dir) {
			continue
		}
		e := entries[dir]
		if e == nil {
			t.Errorf("%s is not in the drawing of the realm's layout (%s): add what it owns and may import", dir, layoutDoc)
			continue
		}
		for _, imp := range sortedKeys(pkgs[dir].imports) {
			if why := layoutImport(e, imp); why != "" {
				t.Errorf("%s imports %s in %v: %s (%s:%d)", dir, imp, pkgs[dir].imports[imp], why, layoutDoc, e.line)
			}
		}
	}
	for _, dir := range sortedKeys(entries) {
		if info := pkgs[dir]; info == nil || !info.hasGo {
			t.Errorf("%s:%d draws %s, which is no package: remove or rename its entry", layoutDoc, entries[dir].line, dir)
		}
	}
	ops := entries["realm/internal/ops"]
	if ops == nil {
		t.Fatal("the drawing lacks realm/internal/ops, which the rule's own check uses")
	}
	if layoutImport(ops, "realm/internal/market") == "" || layoutImport(ops, "internal/auditx") == "" {
		t.Error("the drawing's rule lets the operations part import what its entry does not list")
	}
	if why := layoutImport(ops, "internal/store"); why != "" {
		t.Errorf("the drawing's rule refuses an import the entry lists: %s", why)
	}
}
