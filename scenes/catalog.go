package scenes

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
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

// LoadDir loads the scenes under dir; see [LoadFS]. Each scene folder is
// opened as an [os.Root]: a file in it (scene.yaml or a policy file) that is
// a symbolic link, or has a path, resolving outside that folder is refused
// without being read. The scene folder itself may be a link.
func LoadDir(dir string) (*Catalog, error) {
	c, err := load(os.DirFS(dir), func(name string) (fs.FS, func(), error) {
		root, err := os.OpenRoot(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		return root.FS(), func() { root.Close() }, nil
	})
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
// runs all its scenes as written or none. Whether a file may lead out of
// its folder is fsys's to decide; [LoadDir] never lets it.
func LoadFS(fsys fs.FS) (*Catalog, error) {
	return load(fsys, func(name string) (fs.FS, func(), error) {
		sub, err := fs.Sub(fsys, name)
		return sub, func() {}, err
	})
}

// openScene gives the files of one scene folder, named relative to it, and
// a function that releases them.
type openScene func(folder string) (fs.FS, func(), error)

func load(fsys fs.FS, open openScene) (*Catalog, error) {
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
		scene, found := loadScene(e.Name(), open, files)
		problems = append(problems, found...)
		if scene != nil {
			c.scenes = append(c.scenes, scene)
			c.byID[scene.ID] = scene
		}
	}
	if len(problems) > 0 {
		return nil, loadError(problems)
	}
	if len(c.scenes) == 0 {
		return nil, ErrNoScenes
	}
	slices.SortFunc(c.scenes, func(a, b *Scene) int { return strings.Compare(a.ID, b.ID) })
	return c, nil
}

// loadScene reads the scene of one folder with its policies; a nil scene
// with no problems means the folder is not a scene. files maps the scene
// ids seen so far to their scene file, for duplicate ids.
func loadScene(folder string, open openScene, files map[string]string) (*Scene, []Problem) {
	file := path.Join(folder, SceneFile)
	sceneFS, done, err := open(folder)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, []Problem{{File: file, Msg: fileError(err)}}
	}
	defer done()
	data, err := readFile(sceneFS, SceneFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, []Problem{{File: file, Msg: fileError(err)}}
	}
	scene, src, problems := parse(file, data)
	if scene == nil {
		return nil, problems
	}
	if other, dup := files[scene.ID]; dup {
		return nil, append(problems, Problem{File: file, Line: src.id.line, Column: src.id.column,
			Msg: fmt.Sprintf("id: duplicate scene id %q (also in %s)", scene.ID, other)})
	}
	files[scene.ID] = file
	set, found := loadPolicies(sceneFS, folder, file, scene, src)
	if len(found) > 0 {
		return nil, append(problems, found...)
	}
	scene.Policies = set
	return scene, problems
}

// loadPolicies parses each policy file on its own, so that syntax errors in
// several files are all reported, then merges them into one set.
func loadPolicies(sceneFS fs.FS, dir, sceneFile string, scene *Scene, src sceneSource) (*policy.Set, []Problem) {
	var problems []Problem
	sets := make([]*policy.Set, 0, len(scene.PolicyFiles))
	for i, name := range scene.PolicyFiles {
		file := path.Join(dir, name)
		text, err := readFile(sceneFS, name)
		if err != nil {
			msg := fileError(err)
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

// fileError says why a scene file could not be read, in words that name no
// path beyond the scene's own (the problem already names the file).
func fileError(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "file does not exist"
	case errors.As(err, &pe) && pe.Err.Error() == escapeMessage:
		return "refused: the file resolves outside its scene folder (a symbolic link or path leading out of it)"
	case errors.As(err, &pe):
		return pe.Err.Error()
	}
	return err.Error()
}

// escapeMessage is how os.Root words a path that leads out of the root; it
// exports no sentinel for it.
const escapeMessage = "path escapes from parent"

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
