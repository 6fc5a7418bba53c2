package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// errMemoryLimit reports a --memory-limit that is not a size.
var errMemoryLimit = errors.New("want a size like 512MiB or 2GiB, a number of bytes, or off")

// memoryLimitUnits are the suffixes GOMEMLIMIT takes, so that the flag and
// the variable are written alike.
var memoryLimitUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseMemoryLimit reads a soft memory limit written as GOMEMLIMIT is: a
// whole number of bytes with an optional B, KiB, MiB, GiB or TiB suffix,
// or "off" (no limit: math.MaxInt64, as the runtime spells it).
func parseMemoryLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return math.MaxInt64, nil
	}
	var shift uint
	for _, u := range memoryLimitUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = num, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errMemoryLimit
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%w: too large", errMemoryLimit)
	}
	return n << shift, nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit from
// --memory-limit, and returns what puts the previous one back (serve runs
// inside tests too, and the limit is the whole process's). With the flag
// empty the runtime keeps what GOMEMLIMIT set, or none.
//
// Why a realm wants one: with Go's default GOGC=100 the heap grows to
// twice the live heap before each collection, so a node streaming
// thousands of avatars holds about 2.5 times its live memory as RSS. Under
// a limit the collector runs sooner as the heap nears it, and RSS stays
// near the limit while the live heap fits under it; the price is more
// collections (CPU) when the live heap comes close (docs/benchmarks.md).
func applyMemoryLimit(flag string, log *slog.Logger) (restore func(), err error) {
	if strings.TrimSpace(flag) == "" {
		if env := os.Getenv("GOMEMLIMIT"); env != "" {
			log.Info("soft memory limit from GOMEMLIMIT", "limit", env)
		}
		return func() {}, nil
	}
	n, err := parseMemoryLimit(flag)
	if err != nil {
		return nil, usagef("--memory-limit %q: %v", flag, err)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		log.Info("--memory-limit replaces GOMEMLIMIT", "limit", flag, "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
	}
	prev := debug.SetMemoryLimit(n)
	log.Info("soft memory limit", "limit", flag)
	return func() { debug.SetMemoryLimit(prev) }, nil
}
