package natsconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zerorealm/zerorealm/internal/keyfile"
)

// ErrExists reports that a file Write would write is already there.
var ErrExists = errors.New("natsconf: file exists")

// Write writes every file below dir with mode 0600, in folders of mode
// 0700. It refuses, before writing anything, when any of them exists,
// unless force: overwriting keys by mistake would orphan every credential
// issued under them.
func (c *Cluster) Write(dir string, force bool) error {
	return WriteFiles(dir, c.Files, force)
}

// WriteFiles writes files below dir as Cluster.Write does.
func WriteFiles(dir string, files []File, force bool) error {
	if !force {
		for _, f := range files {
			path := filepath.Join(dir, filepath.FromSlash(f.Path))
			if _, err := os.Lstat(path); err == nil {
				return &OptionError{Err: ErrExists, Detail: path + " exists (remove it or pass --force)"}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("natsconf: %w", err)
			}
		}
	}
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("natsconf: %w", err)
		}
		if err := keyfile.WriteSecret(path, f.Data); err != nil {
			return fmt.Errorf("natsconf: write %s: %w", path, err)
		}
	}
	return nil
}
