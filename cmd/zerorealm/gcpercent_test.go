package main

import (
	"errors"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestParseGCPercent(t *testing.T) {
	good := map[string]int{"0": 0, "20": 20, " 100 ": 100, "400": 400, "off": -1}
	for in, want := range good {
		if got, err := parseGCPercent(in); err != nil || got != want {
			t.Errorf("parseGCPercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "-20", "20%", "1.5", "lots", "99999999999999999999"} {
		if got, err := parseGCPercent(in); !errors.Is(err, errGCPercent) {
			t.Errorf("parseGCPercent(%q) = %d, %v; want errGCPercent", in, got, err)
		}
	}
}

// TestGCPercentSetAndRestored: with no flag and no GOGC a node takes the
// realm's default, not Go's; GOGC in the environment is kept; the flag
// wins over both; a bad value is a usage error that changes nothing; and
// each returned function puts the previous target back.
func TestGCPercentSetAndRestored(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	current := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	before := current()
	t.Cleanup(func() { debug.SetGCPercent(before) })

	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	restore, err := applyGCPercent("", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := current(); got != defaultGCPercent {
		t.Fatalf("target %d with neither flag nor GOGC, want the realm's %d", got, defaultGCPercent)
	}
	restore()
	if got := current(); got != 100 {
		t.Fatalf("target %d after restoring, want 100", got)
	}

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // as the runtime would have read it
	restore, err = applyGCPercent("", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := current(); got != 150 {
		t.Fatalf("target %d with GOGC=150, want GOGC's", got)
	}
	restore()

	restore, err = applyGCPercent("off", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := current(); got != -1 {
		t.Fatalf("target %d with --gc-percent off, want -1", got)
	}
	restore()
	if got := current(); got != 150 {
		t.Fatalf("target %d after restoring, want 150", got)
	}

	var usage usageError
	if _, err := applyGCPercent("20%", log); !errors.As(err, &usage) {
		t.Fatalf("--gc-percent 20%%: %v, want a usage error", err)
	}
	if got := current(); got != 150 {
		t.Fatalf("target %d after a refused flag, want it unchanged (150)", got)
	}
}
