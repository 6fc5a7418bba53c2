package main

import (
	"errors"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the collector's target a node takes when neither
// --gc-percent nor GOGC says otherwise: the heap may grow a fifth past
// what is live (and the goroutines' stacks) before the next collection,
// where Go's own default lets it double.
//
// Why a realm differs from Go's default: most of its live heap is
// long-lived arrays without pointers (templates, the replay registry,
// each stream's window of samples), which a collection does not scan,
// and its streams allocate little per frame. So a collection costs little
// and comes seldom, while the headroom GOGC=100 leaves is as large as the
// live heap itself: at 2,000 avatars over WebSocket it was a third of the
// node's RSS. Measured (docs/benchmarks.md, "The collector's target"):
// RSS per avatar 414 KiB under GOGC=100 against about 250 KiB here, for
// a few per cent of the node's CPU spent collecting.
const defaultGCPercent = 20

// errGCPercent reports a --gc-percent that is neither a percentage nor off.
var errGCPercent = errors.New("want a whole percentage (0 or more) or off")

// parseGCPercent reads a collector target written as GOGC is: a whole
// percentage, or "off" (-1, as debug.SetGCPercent takes it).
func parseGCPercent(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errGCPercent
	}
	return n, nil
}

// applyGCPercent sets the collector's target from --gc-percent, and
// returns what puts the previous one back (serve runs inside tests too,
// and the target is the whole process's). With the flag empty a GOGC in
// the environment is kept, as the runtime already read it; with neither,
// the node takes defaultGCPercent. A soft memory limit (--memory-limit)
// still binds below whatever heap this target allows.
func applyGCPercent(flag string, log *slog.Logger) (restore func(), err error) {
	percent := defaultGCPercent
	if strings.TrimSpace(flag) == "" {
		if env := os.Getenv("GOGC"); env != "" {
			log.Info("collector target from GOGC", "gogc", env)
			return func() {}, nil
		}
	} else {
		if percent, err = parseGCPercent(flag); err != nil {
			return nil, usagef("--gc-percent %q: %v", flag, err)
		}
		if env := os.Getenv("GOGC"); env != "" {
			log.Info("--gc-percent replaces GOGC", "gc_percent", flag, "GOGC", env)
		}
	}
	prev := debug.SetGCPercent(percent)
	log.Info("collector target", "gc_percent", percent)
	return func() { debug.SetGCPercent(prev) }, nil
}
