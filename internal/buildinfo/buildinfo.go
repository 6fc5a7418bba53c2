package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version is set at link time: -ldflags "-X github.com/zerorealm/zerorealm/internal/buildinfo.version=v1.2.3".
var version string

var (
	once   sync.Once
	cached Info
)

// Info describes the running build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
}

// Get returns the build's description.
func Get() Info {
	once.Do(func() {
		cached = Info{Version: version}
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			if cached.Version == "" {
				cached.Version = "devel"
			}
			return
		}
		cached.GoVersion = bi.GoVersion
		if cached.Version == "" {
			cached.Version = bi.Main.Version
		}
		if cached.Version == "" || cached.Version == "(devel)" {
			cached.Version = "devel"
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				cached.Revision = s.Value
			case "vcs.modified":
				cached.Modified = s.Value == "true"
			}
		}
	})
	return cached
}
