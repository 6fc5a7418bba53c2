package scenes

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

const validPolicies = `@id("join")
permit (principal, action == Action::"JoinScene", resource);
`

// sceneYAML is a minimal valid scene with the given id.
func sceneYAML(id string) string {
	return "id: " + id + "\nname: Scene " + id + "\npolicies:\n  - policies.cedar\n"
}

func TestLoadBuiltin(t *testing.T) {
	c, err := LoadBuiltin()
	if err != nil {
		t.Fatalf("LoadBuiltin() error:\n%v", err)
	}
	var ids []string
	for _, s := range c.Scenes() {
		ids = append(ids, s.ID)
	}
	if !slices.Contains(ids, "foundry") {
		t.Fatalf("LoadBuiltin() scenes = %q, want foundry among them", ids)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("Scenes() = %q, want id order", ids)
	}
	s, ok := c.Scene("foundry")
	if !ok {
		t.Fatal(`Scene("foundry") not found`)
	}
	if s.Policies == nil || s.Policies.Len() == 0 {
		t.Fatalf("foundry Policies = %v, want the loaded policies.cedar", s.Policies)
	}
	if _, ok := c.Scene("nowhere"); ok {
		t.Error(`Scene("nowhere") found; want not found`)
	}
}

func TestCatalogScenesIsACopy(t *testing.T) {
	c, err := LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	got := c.Scenes()
	got[0] = nil
	if c.Scenes()[0] == nil {
		t.Error("changing the slice from Scenes() changed the catalog")
	}
}

func TestLoadFS(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want []string // problems; nil: loads
	}{
		{
			name: "two scenes and other files",
			fsys: fstest.MapFS{
				"zeta/scene.yaml":      {Data: []byte(sceneYAML("zeta"))},
				"zeta/policies.cedar":  {Data: []byte(validPolicies)},
				"alpha/scene.yaml":     {Data: []byte(sceneYAML("alpha"))},
				"alpha/policies.cedar": {Data: []byte(validPolicies)},
				"README.md":            {Data: []byte("not a scene")},
				"drafts/notes.txt":     {Data: []byte("a folder without scene.yaml")},
				".git/scene.yaml":      {Data: []byte("hidden folders are skipped")},
			},
		},
		{
			name: "Cedar syntax error",
			fsys: fstest.MapFS{
				"alpha/scene.yaml":     {Data: []byte(sceneYAML("alpha"))},
				"alpha/policies.cedar": {Data: []byte("@id(\"join\")\npermit (principal, action, resource)\nwhen { context.x == };\n")},
			},
			want: []string{"alpha/policies.cedar:3:22: "},
		},
		{
			name: "missing policy file",
			fsys: fstest.MapFS{
				"alpha/scene.yaml": {Data: []byte(sceneYAML("alpha"))},
			},
			want: []string{"alpha/scene.yaml:4:5: policies[0]: alpha/policies.cedar: file does not exist"},
		},
		{
			name: "duplicate scene id",
			fsys: fstest.MapFS{
				"alpha/scene.yaml":     {Data: []byte(sceneYAML("alpha"))},
				"alpha/policies.cedar": {Data: []byte(validPolicies)},
				"beta/scene.yaml":      {Data: []byte(sceneYAML("alpha"))},
				"beta/policies.cedar":  {Data: []byte(validPolicies)},
			},
			want: []string{`beta/scene.yaml:1:5: id: duplicate scene id "alpha" (also in alpha/scene.yaml)`},
		},
		{
			name: "duplicate policy id across files",
			fsys: fstest.MapFS{
				"alpha/scene.yaml":     {Data: []byte(sceneYAML("alpha") + "  - more.cedar\n")},
				"alpha/policies.cedar": {Data: []byte(validPolicies)},
				"alpha/more.cedar":     {Data: []byte(validPolicies)},
			},
			want: []string{`alpha/scene.yaml:4:5: policies: policy: duplicate policy id "join"`},
		},
		{
			name: "every problem of every scene",
			fsys: fstest.MapFS{
				"alpha/scene.yaml":     {Data: []byte("id: alpha\nname: Alpha\nzones: 3\npolicies:\n  - policies.cedar\n")},
				"alpha/policies.cedar": {Data: []byte(validPolicies)},
				"beta/scene.yaml":      {Data: []byte(sceneYAML("beta") + "  - second.cedar\n")},
				"beta/policies.cedar":  {Data: []byte("permit (principal, action, resource)\n")},
				"beta/second.cedar":    {Data: []byte("forbid (principal, action, resource) when { 1 + };\n")},
			},
			want: []string{
				"alpha/scene.yaml:3:8: zones: must be a list",
				"beta/policies.cedar:2:1: ",
				"beta/second.cedar:1:",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadFS(tt.fsys)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("LoadFS() error:\n%v", err)
				}
				var ids []string
				for _, s := range c.Scenes() {
					ids = append(ids, s.ID)
				}
				if want := []string{"alpha", "zeta"}; !slices.Equal(ids, want) {
					t.Errorf("LoadFS() scenes = %q, want %q", ids, want)
				}
				return
			}
			if c != nil {
				t.Errorf("LoadFS() catalog = %v, want nil with an error", c)
			}
			got := problemStrings(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("LoadFS() problems =\n%s\nwant %d starting\n%s", strings.Join(got, "\n"), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("LoadFS() problem %d = %q, want it to start with %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestLoadFSCedarSyntaxError checks that the position of a Cedar error
// reaches the problem intact, through the scene folder's path.
func TestLoadFSCedarSyntaxError(t *testing.T) {
	fsys := fstest.MapFS{
		"foundry/scene.yaml": {Data: []byte(sceneYAML("foundry"))},
		"foundry/policies.cedar": {Data: []byte(`// header
@id("join")
permit (principal, action == Action::"JoinScene", resource);

@id("broken")
permit (principal, action, resource) when { principal.roles.contains("operator" };
`)},
	}
	_, err := LoadFS(fsys)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("LoadFS() error = %v, want a *LoadError", err)
	}
	if len(le.Problems) != 1 {
		t.Fatalf("LoadFS() problems = %q, want 1", problemStrings(t, err))
	}
	p := le.Problems[0]
	if p.File != "foundry/policies.cedar" || p.Line != 6 || p.Column != 81 || p.Msg == "" {
		t.Errorf("LoadFS() problem = %+v, want foundry/policies.cedar:6:81 (the closing brace) with a message", p)
	}
}

func TestLoadFSNoScenes(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"empty":           {},
		"folders only":    {"docs/README.md": {Data: []byte("x")}},
		"top-level scene": {"scene.yaml": {Data: []byte(sceneYAML("top"))}},
	} {
		if c, err := LoadFS(fsys); !errors.Is(err, ErrNoScenes) {
			t.Errorf("LoadFS(%s) = %v, %v; want ErrNoScenes", name, c, err)
		}
	}
}

func TestLoadFSOversizedFile(t *testing.T) {
	big := sceneYAML("alpha") + "# " + strings.Repeat("x", MaxFileSize) + "\n"
	_, err := LoadFS(fstest.MapFS{"alpha/scene.yaml": {Data: []byte(big)}})
	want := []string{"alpha/scene.yaml: file is larger than 1048576 bytes"}
	if got := problemStrings(t, err); !slices.Equal(got, want) {
		t.Errorf("LoadFS(oversized) problems = %q, want %q", got, want)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The builtin scenes, copied to disk, load the same from a folder.
	err := fs.WalkDir(Builtin(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Builtin(), path)
		write(path, string(data))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir(builtin copy) error:\n%v", err)
	}
	if _, ok := c.Scene("foundry"); !ok {
		t.Fatal(`LoadDir(builtin copy): Scene("foundry") not found`)
	}

	write("foundry/policies.cedar", "permit (principal, action, resource)")
	_, err = LoadDir(dir)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].File != "foundry/policies.cedar" {
		t.Fatalf("LoadDir(broken policy) = %v, want one problem in foundry/policies.cedar", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadDir(broken policy) error %q does not name the folder %s", err, dir)
	}
}

// TestBadSamples keeps the fuzz seeds in testdata honest: each must fail.
func TestBadSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in testdata: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := Parse(f, data); err == nil {
			t.Errorf("Parse(%s) = %v, nil; want problems", f, s.ID)
		}
	}
}
