package scenes

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/zerorealm/zerorealm/policy"
)

// SceneFile is the file that makes a folder a scene.
const SceneFile = "scene.yaml"

// ErrNoScenes is returned when a folder holds no scene at all: a realm
// started on the wrong folder should fail, not serve an empty world.
var ErrNoScenes = errors.New("scenes: no scene folder (a folder holding " + SceneFile + ") found")

// Catalog is a validated, immutable set of scenes.
type Catalog struct {
	scenes []*Scene // in id order
	byID   map[string]*Scene
}

// Scenes returns the scenes in id order.
func (c *Catalog) Scenes() []*Scene { return slices.Clone(c.scenes) }

// Scene returns the scene with the given id.
func (c *Catalog) Scene(id string) (*Scene, bool) {
	s, ok := c.byID[id]
	return s, ok
}

//go:embed builtin
var builtin embed.FS

// Builtin returns the scenes shipped inside the binary, one folder per scene.
func Builtin() fs.FS {
	sub, err := fs.Sub(builtin, "builtin")
	if err != nil {
		// Only an invalid literal path can make Sub fail.
		panic(err)
	}
	return sub
}

// LoadBuiltin loads the scenes shipped inside the binary.
func LoadBuiltin() (*Catalog, error) { return LoadFS(Builtin()) }

// LoadDir loads the scenes under dir; see [LoadFS].
func LoadDir(dir string) (*Catalog, error) {
	c, err := LoadFS(os.DirFS(dir))
	if err != nil {
		// Problems name files relative to dir; say which dir.
		return nil, fmt.Errorf("scenes in %s:\n%w", dir, err)
	}
	return c, nil
}

// LoadFS loads every scene of fsys: each top-level folder holding a
// scene.yaml is one scene, and its policy files are read from that folder.
// Folders whose name starts with "." are skipped. Any problem in any scene
// fails the whole load, with every problem found in a *[LoadError]: a realm
// runs all its scenes as written or none.
func LoadFS(fsys fs.FS) (*Catalog, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("scenes: list scene folders: %w", err)
	}
	var problems []Problem
	c := &Catalog{byID: map[string]*Scene{}}
	files := map[string]string{} // scene id -> scene file
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || (!e.IsDir() && e.Type()&fs.ModeSymlink == 0) {
			continue
		}
		file := path.Join(e.Name(), SceneFile)
		data, err := readFile(fsys, file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			problems = append(problems, Problem{File: file, Msg: err.Error()})
			continue
		}
		scene, src, found := parse(file, data)
		problems = append(problems, found...)
		if scene == nil {
			continue
		}
		if other, dup := files[scene.ID]; dup {
			problems = append(problems, Problem{File: file, Line: src.id.line, Column: src.id.column,
				Msg: fmt.Sprintf("id: duplicate scene id %q (also in %s)", scene.ID, other)})
			continue
		}
		files[scene.ID] = file
		set, found := loadPolicies(fsys, e.Name(), file, scene, src)
		problems = append(problems, found...)
		scene.Policies = set
		c.scenes = append(c.scenes, scene)
		c.byID[scene.ID] = scene
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &LoadError{Problems: problems}
	}
	if len(c.scenes) == 0 {
		return nil, ErrNoScenes
	}
	slices.SortFunc(c.scenes, func(a, b *Scene) int { return strings.Compare(a.ID, b.ID) })
	return c, nil
}

// loadPolicies parses each policy file on its own, so that syntax errors in
// several files are all reported, then merges them into one set.
func loadPolicies(fsys fs.FS, dir, sceneFile string, scene *Scene, src sceneSource) (*policy.Set, []Problem) {
	var problems []Problem
	sets := make([]*policy.Set, 0, len(scene.PolicyFiles))
	for i, name := range scene.PolicyFiles {
		file := path.Join(dir, name)
		text, err := readFile(fsys, file)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				msg = "file does not exist"
			}
			pos := src.policies[i]
			problems = append(problems, Problem{File: sceneFile, Line: pos.line, Column: pos.column,
				Msg: fmt.Sprintf("policies[%d]: %s: %s", i, file, msg)})
			continue
		}
		set, err := policy.Parse(file, text)
		if err != nil {
			problems = append(problems, policyProblem(file, err))
			continue
		}
		sets = append(sets, set)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	set, err := policy.Merge(sets...)
	if err != nil {
		// Duplicate @id across the scene's files: the policy package names
		// both places in its message.
		return nil, []Problem{{File: sceneFile, Line: src.policies[0].line, Column: src.policies[0].column,
			Msg: "policies: " + err.Error()}}
	}
	return set, nil
}

// policyProblem places a policy error in its Cedar file, at the line and
// column of a syntax error when there is one.
func policyProblem(file string, err error) Problem {
	if se, ok := errors.AsType[*policy.SyntaxError](err); ok {
		p := Problem{File: se.File, Line: se.Line, Column: se.Column, Msg: se.Msg}
		if p.File == "" {
			p.File = file
		}
		return p
	}
	return Problem{File: file, Msg: err.Error()}
}

// readFile reads at most MaxFileSize bytes, so that a huge or endless file
// (a device node in a scene folder) cannot exhaust memory.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d bytes", MaxFileSize)
	}
	return data, nil
}
