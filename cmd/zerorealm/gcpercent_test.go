package main

import (
	"errors"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/zerorealm/zerorealm/internal/gctarget"
)

func TestParseGCPercent(t *testing.T) {
	good := map[string]int{"0": 0, "20": 20, " 100 ": 100, "400": 400, "off": -1}
	for in, want := range good {
		if got, err := parseGCPercent(in); err != nil || got != want {
			t.Errorf("parseGCPercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "auto", "-1", "-20", "20%", "1.5", "lots", "99999999999999999999"} {
		if got, err := parseGCPercent(in); !errors.Is(err, errGCPercent) {
			t.Errorf("parseGCPercent(%q) = %d, %v; want errGCPercent", in, got, err)
		}
	}
}

// TestGCPercentSetAndRestored: with no flag and no GOGC a node tunes its
// target itself, starting from the floor, not Go's 100; so it does with
// auto; GOGC in the environment is kept; a number or off wins over both;
// a bad value is a usage error that changes nothing; and each returned
// function stops the tuning and puts the previous target back.
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
	for _, flag := range []string{"", "auto"} {
		debug.SetGCPercent(100)
		restore, err := applyGCPercent(flag, log)
		if err != nil {
			t.Fatal(err)
		}
		if got := current(); got != gctarget.DefaultFloor {
			t.Fatalf("target %d with --gc-percent %q and no GOGC, want the tuner's floor %d", got, flag, gctarget.DefaultFloor)
		}
		restore()
		if got := current(); got != 100 {
			t.Fatalf("target %d after restoring, want 100", got)
		}
	}

	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // as the runtime would have read it
	restore, err := applyGCPercent("", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := current(); got != 150 {
		t.Fatalf("target %d with GOGC=150, want GOGC's", got)
	}
	restore()

	for flag, want := range map[string]int{"off": -1, "40": 40} {
		restore, err = applyGCPercent(flag, log)
		if err != nil {
			t.Fatal(err)
		}
		if got := current(); got != want {
			t.Fatalf("target %d with --gc-percent %s, want %d", got, flag, want)
		}
		restore()
		if got := current(); got != 150 {
			t.Fatalf("target %d after restoring, want 150", got)
		}
	}

	var usage usageError
	if _, err := applyGCPercent("20%", log); !errors.As(err, &usage) {
		t.Fatalf("--gc-percent 20%%: %v, want a usage error", err)
	}
	if got := current(); got != 150 {
		t.Fatalf("target %d after a refused flag, want it unchanged (150)", got)
	}
}
