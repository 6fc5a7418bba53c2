// Package cgroupmem reads the memory limit the Linux control group of this
// process sets, so that a node in a container knows how much memory it may
// use before the kernel kills it.
//
// The Go runtime sizes its heap by GOGC alone: it lets the heap grow to
// about twice what is live before it collects, whatever the container
// allows. A node whose live heap is half its container's limit is then
// killed for memory it never needed. Given the limit, the node sets the
// runtime's soft memory limit under it (cmd/zerorealm, --memory-limit),
// and the collector runs sooner instead.
//
// Both cgroup versions are read: v2's memory.max and v1's
// memory.limit_in_bytes, in the process's own group and each group above
// it, since any of them may hold the limit; the least is the one that
// binds. Inside a container, /proc/self/cgroup may name a path of the
// host's hierarchy that the container's mount does not show: a group that
// is not there is skipped, and the mount's root, the container's own
// group, still counts. Nothing is read outside the fs.FS a caller gives
// (os.DirFS("/") in the node), so tests give a tree of their own.
package cgroupmem
