package trust

import (
	"time"

	"github.com/zerorealm/zerorealm/internal/clock"
)

// Clock tells a Tracker what time it is. The score decays with time, so the
// clock is injected: production uses SystemClock, tests a ManualClock and get
// the same score for the same inputs on every run. Every clock.Clock is
// one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock (internal/clock's Real).
type SystemClock = clock.Real

// ManualClock moves only when told to (internal/clock's Manual): Advance
// and Set, safe for concurrent use, so a test can move it while trackers
// read it.
type ManualClock = clock.Manual

// NewManualClock returns a clock that reads t until it is moved.
func NewManualClock(t time.Time) *ManualClock { return clock.NewManual(t) }
