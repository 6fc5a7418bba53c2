package main

import (
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
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
