package cgroupmem

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Where the files are, relative to the root of the fs.FS Limit reads.
const (
	procCgroup = "proc/self/cgroup"
	v2Root     = "sys/fs/cgroup"
	v1Root     = "sys/fs/cgroup/memory"
	v2File     = "memory.max"
	v1File     = "memory.limit_in_bytes"
)

// v1Unlimited: cgroup v1 writes "no limit" as the largest page count the
// kernel keeps, times the page size (9223372036854771712 with 4 KiB
// pages); anything this large is no limit a machine has.
const v1Unlimited = 1 << 62

// maxLine bounds a line of /proc/self/cgroup: a group's path is at most
// a few path components, and a file that is not the kernel's is refused
// rather than read whole.
const maxLine = 4096

// ErrMalformed is wrapped by every refusal of a file's contents.
var ErrMalformed = errors.New("cgroupmem: malformed")

// Limit returns the least memory limit, in bytes, that the control
// groups of this process set, read from fsys rooted at the file system's
// root; ok is false when none sets one (no cgroup file system, or every
// group unlimited).
func Limit(fsys fs.FS) (limit int64, ok bool, err error) {
	raw, err := fs.ReadFile(fsys, procCgroup)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil // not Linux, or no /proc: nothing to read
	}
	if err != nil {
		return 0, false, err
	}
	groups, err := ParseProcCgroup(string(raw))
	if err != nil {
		return 0, false, err
	}
	// The memory controller is v1's when a v1 hierarchy names it, and
	// v2's otherwise (a hybrid host mounts both).
	var unified *Group
	for i, g := range groups {
		if g.v1Memory {
			return leastLimit(fsys, v1Root, v1File, g.path)
		}
		if g.unified {
			unified = &groups[i]
		}
	}
	if unified == nil {
		return 0, false, nil
	}
	return leastLimit(fsys, v2Root, v2File, unified.path)
}

// leastLimit reads file in group and in every group above it up to the
// mount's root, and returns the least limit among those that exist.
func leastLimit(fsys fs.FS, root, file, group string) (int64, bool, error) {
	var least int64
	found := false
	for dir := group; ; dir = path.Dir(dir) {
		name := path.Join(root, strings.TrimPrefix(dir, "/"), file)
		raw, err := fs.ReadFile(fsys, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// A host path the container's mount does not show, or v2's
			// root, which has no memory.max.
		case err != nil:
			return 0, false, err
		default:
			n, limited, err := ParseLimit(string(raw))
			if err != nil {
				return 0, false, fmt.Errorf("%s: %w", name, err)
			}
			if limited && (!found || n < least) {
				least, found = n, true
			}
		}
		if dir == "/" || dir == "." || dir == "" {
			return least, found, nil
		}
	}
}

// Group is one line of /proc/self/cgroup.
type Group struct {
	path     string // the group's path in its hierarchy, from "/"
	unified  bool   // the v2 hierarchy ("0::/path")
	v1Memory bool   // a v1 hierarchy with the memory controller
}

// Path is the group's path in its hierarchy.
func (g Group) Path() string { return g.path }

// ParseProcCgroup reads /proc/self/cgroup: one "ID:controllers:path" line
// per hierarchy. A line of another shape, or a path that is not absolute
// or climbs out ("/../"), is ErrMalformed.
func ParseProcCgroup(text string) ([]Group, error) {
	var groups []Group
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: /proc/self/cgroup line %d: want ID:controllers:path", ErrMalformed, n)
		}
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return nil, fmt.Errorf("%w: /proc/self/cgroup line %d: hierarchy ID %q", ErrMalformed, n, id)
		}
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
			return nil, fmt.Errorf("%w: /proc/self/cgroup line %d: path %q is not a clean absolute path", ErrMalformed, n, p)
		}
		g := Group{path: p, unified: id == "0" && controllers == ""}
		for c := range strings.SplitSeq(controllers, ",") {
			if c == "memory" {
				g.v1Memory = true
			}
		}
		groups = append(groups, g)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: /proc/self/cgroup: %w", ErrMalformed, err)
	}
	return groups, nil
}

// ParseLimit reads a memory limit file: "max" (v2) or a count of bytes
// at or above v1Unlimited (v1) is no limit (limited false); any other
// count of bytes is the limit. Anything else is ErrMalformed.
func ParseLimit(text string) (n int64, limited bool, err error) {
	s := strings.TrimSpace(text)
	if s == "max" {
		return 0, false, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: memory limit %.32q", ErrMalformed, s)
	}
	if v >= v1Unlimited {
		return 0, false, nil
	}
	return int64(v), true, nil
}
