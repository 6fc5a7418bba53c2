package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/zerorealm/zerorealm/internal/gctarget"
)

// autoGCPercent is --gc-percent's value (and its default, without GOGC)
// that lets the node move its collector's target itself: from
// gctarget.DefaultFloor (20) up to gctarget.DefaultCeiling (100), as far
// as keeps the collector within gctarget.DefaultBudget (5 %) of the CPU
// the node uses.
//
// Why a realm does not keep Go's 100: most of its live heap is long-lived
// arrays without pointers (templates, the replay registry, each stream's
// window of samples), which a collection does not scan, and its
// WebSocket streams allocate little per frame. There the headroom GOGC=100
// leaves is a third of the node's RSS and buys almost nothing: at 2,000
// avatars over WebSocket, 392 KiB of RSS an avatar at 100 against 243 KiB
// at 20, for 1-3 % of the node's CPU spent collecting. Over WebRTC each
// peer connection's transports fill the heap with pointers and every
// datagram allocates, and at 20 the collector took a fifth of the node's
// CPU: there the node raises its target (docs/benchmarks.md, "The
// collector's target").
const autoGCPercent = "auto"

// errGCPercent reports a --gc-percent that is neither a percentage, off
// nor auto.
var errGCPercent = errors.New("want auto, a whole percentage (0 or more) or off")

// parseGCPercent reads a fixed collector target written as GOGC is: a
// whole percentage, or "off" (-1, as debug.SetGCPercent takes it).
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
// returns what stops the node's tuning and puts the previous target back
// (serve runs inside tests too, and the target is the whole process's).
// With the flag empty a GOGC in the environment is kept, as the runtime
// already read it; with neither, and with auto, the node tunes its
// target itself (autoGCPercent). A soft memory limit (--memory-limit)
// still binds below whatever heap the target allows.
func applyGCPercent(flag string, log *slog.Logger) (restore func(), err error) {
	flag = strings.TrimSpace(flag)
	if flag == "" {
		if env := os.Getenv("GOGC"); env != "" {
			log.Info("collector target from GOGC", "gogc", env)
			return func() {}, nil
		}
		flag = autoGCPercent
	} else if env := os.Getenv("GOGC"); env != "" {
		log.Info("--gc-percent replaces GOGC", "gc_percent", flag, "GOGC", env)
	}
	if flag != autoGCPercent {
		percent, err := parseGCPercent(flag)
		if err != nil {
			return nil, usagef("--gc-percent %q: %v", flag, err)
		}
		prev := debug.SetGCPercent(percent)
		log.Info("collector target", "gc_percent", percent)
		return func() { debug.SetGCPercent(prev) }, nil
	}
	tuner, err := gctarget.New(gctarget.Config{Logger: log})
	if err != nil {
		return nil, err
	}
	prev := debug.SetGCPercent(tuner.Floor())
	ctx, stop := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { tuner.Run(ctx) })
	// The default says nothing at info: its moves do (gctarget).
	log.Debug("collector target tuned by what collecting costs", "from", gctarget.DefaultFloor, "to", gctarget.DefaultCeiling,
		"budget", strconv.FormatFloat(100*gctarget.DefaultBudget, 'g', -1, 64)+"%")
	return func() {
		stop()
		running.Wait()
		debug.SetGCPercent(prev)
	}, nil
}
