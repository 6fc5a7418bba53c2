package scenes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeScene writes files (name relative to dir -> content) under dir.
func writeScene(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLoadDirRefusesFilesOutsideTheSceneFolder links a scene's policy file,
// and in another scene its scene.yaml, to a file outside the scene folder
// that holds a secret: both are refused, and the secret appears nowhere in
// the error.
func TestLoadDirRefusesFilesOutsideTheSceneFolder(t *testing.T) {
	const secret = "root:SECRET-hunter2-7f3a:0:0"
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeScene(t, dir, map[string]string{
		"alpha/scene.yaml":    sceneYAML("alpha"),
		"beta/policies.cedar": validPolicies,
	})
	for _, link := range []string{"alpha/policies.cedar", "beta/scene.yaml"} {
		if err := os.Symlink(outside, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadDir(dir)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 2 {
		t.Fatalf("LoadDir(links out of the folder) = %v, want two problems", err)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error echoes the outside file:\n%v", err)
	}
	for i, want := range []string{"alpha/scene.yaml", "beta/scene.yaml"} {
		p := le.Problems[i]
		if p.File != want || !strings.Contains(p.Msg, "outside its scene folder") {
			t.Errorf("problem %d = %s, want one in %s saying the file resolves outside its scene folder", i, p, want)
		}
	}
}

// TestLoadDirFollowsLinksInsideTheSceneFolder keeps what stays allowed: a
// scene folder that is itself a link, and a policy file linked to another
// file of its own folder.
func TestLoadDirFollowsLinksInsideTheSceneFolder(t *testing.T) {
	elsewhere := t.TempDir()
	writeScene(t, elsewhere, map[string]string{
		"alpha/scene.yaml":      sceneYAML("alpha"),
		"alpha/real/join.cedar": validPolicies,
	})
	if err := os.Symlink("real/join.cedar", filepath.Join(elsewhere, "alpha", "policies.cedar")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(elsewhere, "alpha"), filepath.Join(dir, "alpha")); err != nil {
		t.Fatal(err)
	}
	c, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir(links inside the folder) error:\n%v", err)
	}
	if _, ok := c.Scene("alpha"); !ok {
		t.Fatal(`Scene("alpha") not found`)
	}
}

// TestLoadDirRefusesDuplicateKeysAndInvalidUTF8 loads one scene with a
// duplicate key and another with bytes that are not UTF-8: each is refused
// at load, at its line, and the bad bytes come back escaped.
func TestLoadDirRefusesDuplicateKeysAndInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	writeScene(t, dir, map[string]string{
		"alpha/scene.yaml":     "id: alpha\nname: Alpha\nname: Other\npolicies:\n  - policies.cedar\n",
		"alpha/policies.cedar": validPolicies,
		"beta/scene.yaml":      "id: beta\nname: \"B\xffeta\"\npolicies:\n  - policies.cedar\n",
		"beta/policies.cedar":  validPolicies,
		"gamma/scene.yaml":     sceneYAML("gamma"),
		"gamma/policies.cedar": validPolicies + "// caf\xe9\n",
	})
	_, err := LoadDir(dir)
	want := []string{
		"alpha/scene.yaml:3:1: name: duplicate field (first at line 2)",
		"beta/scene.yaml:2:9: invalid UTF-8: a scene file is UTF-8 text",
		"gamma/policies.cedar:3:7: invalid UTF-8 encoding",
	}
	got := problemStrings(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("LoadDir problems =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestClipMessageEscapesAndBounds(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"bad \xff byte", `bad \xff byte`},
		{"two\nlines\x00", `two\nlines\x00`},
		{"right-to-left \u202e override", `right-to-left \u202e override`},
		{strings.Repeat("é", maxMessageRunes+5), strings.Repeat("é", maxMessageRunes) + "…"},
	} {
		if got := clipMessage(tc.in); got != tc.want {
			t.Errorf("clipMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
