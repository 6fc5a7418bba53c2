package main

import (
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
	"testing/fstest"
)

func TestParseMemoryLimit(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "2GiB": 2 << 30, "64KiB": 64 << 10,
		"100B": 100, "1TiB": 1 << 40, " 3GiB ": 3 << 30, "off": math.MaxInt64,
	}
	for in, want := range good {
		if got, err := parseMemoryLimit(in); err != nil || got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "2GB", "512M", "MiB", "lots", "9999999999TiB", "1e9"} {
		if got, err := parseMemoryLimit(in); !errors.Is(err, errMemoryLimit) {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want errMemoryLimit", in, got, err)
		}
	}
}

// TestMemoryLimitSetAndRestored: the flag sets the runtime's limit and the
// returned function puts the previous one back; a bad size is a usage
// error and leaves the limit alone; no flag leaves it alone.
func TestMemoryLimitSetAndRestored(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	noContainer(t)
	before := debug.SetMemoryLimit(-1)
	restore, err := applyMemoryLimit("3GiB", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Fatalf("limit %d after --memory-limit 3GiB", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d after restoring, want %d", got, before)
	}
	var usage usageError
	if _, err := applyMemoryLimit("3 gigs", log); !errors.As(err, &usage) {
		t.Fatalf("--memory-limit '3 gigs': %v, want a usage error", err)
	}
	restore, err = applyMemoryLimit("", log)
	if err != nil {
		t.Fatal(err)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d with no flag, want %d", got, before)
	}
}

// noContainer makes the process's control group set no memory limit, as
// on a machine of its own, whatever the machine running the test has.
func noContainer(t *testing.T) {
	inContainer(t, "max\n")
}

// inContainer makes the process's control group (v2) limit its memory to
// what memoryMax says.
func inContainer(t *testing.T, memoryMax string) {
	t.Helper()
	t.Setenv("GOMEMLIMIT", "")
	prev := systemFS
	systemFS = fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte(memoryMax)},
	}
	t.Cleanup(func() { systemFS = prev })
}

// TestContainerLimitTaken: with no --memory-limit and no GOMEMLIMIT, a node
// in a container of 1 GiB takes nine tenths of it; told a limit, or off,
// it takes that instead; a control group it cannot read leaves the limit
// as it was.
func TestContainerLimitTaken(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	before := debug.SetMemoryLimit(-1)
	inContainer(t, "1073741824\n")
	restore, err := applyMemoryLimit("", log)
	if err != nil {
		t.Fatal(err)
	}
	gib := int64(1 << 30)
	if got, want := debug.SetMemoryLimit(-1), int64(float64(gib)*containerShare); got != want {
		t.Errorf("limit %d in a container of 1GiB, want %d", got, want)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit %d after restoring, want %d", got, before)
	}
	for flag, want := range map[string]int64{"3GiB": 3 << 30, "off": math.MaxInt64} {
		restore, err := applyMemoryLimit(flag, log)
		if err != nil {
			t.Fatal(err)
		}
		if got := debug.SetMemoryLimit(-1); got != want {
			t.Errorf("limit %d with --memory-limit %s in a container, want %d", got, flag, want)
		}
		restore()
	}
	inContainer(t, "lots\n")
	restore, err = applyMemoryLimit("", log)
	if err != nil {
		t.Fatal(err)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit %d from an unreadable control group, want %d", got, before)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{966367641: "921MiB", 3 << 30: "3GiB", 1536: "1KiB", 100: "100B", 0: "0B"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %s, want %s", n, got, want)
		}
	}
}
