package cgroupmem

import (
	"errors"
	"os"
	"path"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// tree is a file system holding /proc/self/cgroup and the given files.
func tree(procCgroup string, files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	if procCgroup != "" {
		fsys["proc/self/cgroup"] = &fstest.MapFile{Data: []byte(procCgroup)}
	}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

func TestLimitReadsEachLayout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fsys  fstest.MapFS
		limit int64 // 0: none
	}{
		{"v2 in a container's own namespace", tree("0::/\n", map[string]string{
			"sys/fs/cgroup/memory.max": "1073741824\n",
		}), 1 << 30},
		{"v2, the pod's limit above the container's none", tree("0::/kubepods/pod1/ctr\n", map[string]string{
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "536870912\n",
			"sys/fs/cgroup/kubepods/memory.max":          "max\n",
		}), 512 << 20},
		{"v2, the container's limit under the pod's", tree("0::/kubepods/pod1/ctr\n", map[string]string{
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "268435456\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "536870912\n",
		}), 256 << 20},
		{"v2 unlimited", tree("0::/user.slice/session-1.scope\n", map[string]string{
			"sys/fs/cgroup/user.slice/session-1.scope/memory.max": "max\n",
			"sys/fs/cgroup/user.slice/memory.max":                 "max\n",
		}), 0},
		{"v1, a host path the container's mount does not show", tree("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n", map[string]string{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n",
		}), 256 << 20},
		{"v1 unlimited", tree("4:memory:/\n", map[string]string{
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}), 0},
		{"hybrid: the memory controller is v1's", tree("0::/user.slice\n4:memory:/user.slice\n", map[string]string{
			"sys/fs/cgroup/memory/user.slice/memory.limit_in_bytes": "134217728\n",
			"sys/fs/cgroup/user.slice/memory.max":                   "67108864\n",
		}), 128 << 20},
		{"no /proc", tree("", nil), 0},
		{"no memory controller", tree("3:cpu:/\n", nil), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit, ok, err := Limit(tc.fsys)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tc.limit != 0) || limit != tc.limit {
				t.Errorf("Limit = %d, %v; want %d", limit, ok, tc.limit)
			}
		})
	}
}

func TestMalformedFilesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		says string
	}{
		{"a limit that is no number", tree("0::/\n", map[string]string{"sys/fs/cgroup/memory.max": "lots\n"}), `memory limit "lots"`},
		{"a negative limit", tree("0::/\n", map[string]string{"sys/fs/cgroup/memory.max": "-1\n"}), `memory limit "-1"`},
		{"a line without fields", tree("garbage\n", nil), "want ID:controllers:path"},
		{"a hierarchy ID that is no number", tree("x::/a\n", nil), `hierarchy ID "x"`},
		{"a relative path", tree("0::a/b\n", nil), "not a clean absolute path"},
		{"a path that climbs out", tree("0::/a/../../etc\n", nil), "not a clean absolute path"},
		{"a line longer than any group's", tree("0::/"+strings.Repeat("a", maxLine)+"\n", nil), "token too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Limit(tc.fsys)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Limit = %v; want ErrMalformed saying %q", err, tc.says)
			}
		})
	}
}

// TestThisMachine reads the real files: on Linux they are the kernel's,
// and whatever limit they hold must read without an error.
func TestThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("control groups are Linux's")
	}
	limit, ok, err := Limit(os.DirFS("/"))
	if err != nil {
		t.Fatalf("this machine's control groups: %v", err)
	}
	t.Logf("limit %d (%v)", limit, ok)
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{"0::/\n", "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/x\n", "1:name=systemd:/user.slice\n", "garbage", "0::a", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		groups, err := ParseProcCgroup(text)
		if err != nil {
			return
		}
		for _, g := range groups {
			if !strings.HasPrefix(g.Path(), "/") || path.Clean(g.Path()) != g.Path() {
				t.Fatalf("accepted path %q", g.Path())
			}
		}
	})
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max\n", "1073741824\n", "9223372036854771712\n", "-1", "0x10", " 42 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		n, limited, err := ParseLimit(text)
		if err == nil && limited && (n < 0 || n >= v1Unlimited) {
			t.Fatalf("ParseLimit(%q) = %d, limited", text, n)
		}
	})
}
