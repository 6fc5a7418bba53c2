package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/zerorealm/zerorealm/internal/cgroupmem"
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

// containerShare is the part of its control group's memory limit a node
// takes as its soft limit when told nothing: the rest is for what the
// runtime does not count (goroutine stacks in flight, the kernel's
// buffers charged to the group) and for the collector to catch up.
const containerShare = 0.9

// systemFS is where the control groups are read (tests give their own).
var systemFS fs.FS = os.DirFS("/")

// applyMemoryLimit sets the Go runtime's soft memory limit from
// --memory-limit, and returns what puts the previous one back (serve runs
// inside tests too, and the limit is the whole process's). With the flag
// empty the runtime keeps what GOMEMLIMIT set; with neither, a node whose
// control group limits its memory (a container) takes nine tenths of that
// limit, so that the heap's growth to twice its live size does not get it
// killed; otherwise it keeps none.
//
// Why a realm wants one beside its collector target (--gc-percent, tuned
// from 20 to 100 unless told otherwise; gcpercent.go): the target sizes the heap from
// what is live, whatever the machine has, while a limit says what the
// machine has. Under a limit the collector runs sooner as the heap nears
// it, and RSS stays near the limit while the live heap fits under it; the
// price is more collections (CPU) when the live heap comes close
// (docs/benchmarks.md).
func applyMemoryLimit(flag string, log *slog.Logger) (restore func(), err error) {
	if strings.TrimSpace(flag) == "" {
		if env := os.Getenv("GOMEMLIMIT"); env != "" {
			log.Info("soft memory limit from GOMEMLIMIT", "limit", env)
			return func() {}, nil
		}
		return applyContainerLimit(log), nil
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

// applyContainerLimit sets the soft memory limit to containerShare of the
// control group's limit, if there is one. A control group that cannot be
// read leaves the runtime as it is, said in the log: the node still
// serves, as it would without a container.
func applyContainerLimit(log *slog.Logger) (restore func()) {
	limit, ok, err := cgroupmem.Limit(systemFS)
	if err != nil {
		log.Warn("no soft memory limit: this process's control group cannot be read; set --memory-limit", "err", err)
		return func() {}
	}
	if !ok {
		return func() {}
	}
	soft := int64(float64(limit) * containerShare)
	prev := debug.SetMemoryLimit(soft)
	log.Info("soft memory limit from the control group's", "limit", formatBytes(soft), "group_limit", formatBytes(limit))
	return func() { debug.SetMemoryLimit(prev) }
}

// formatBytes writes n in the largest unit GOMEMLIMIT takes that keeps
// it above one, rounded down: 966367641 is "921MiB".
func formatBytes(n int64) string {
	for _, u := range memoryLimitUnits {
		if n >= 1<<u.shift {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
