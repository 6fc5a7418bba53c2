package xr

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// A node that takes more streams than it can read degrades every stream
// it serves: its read lag climbs for all of them at once. So it sheds at
// the door instead: a session's first frames or its WebRTC offer open no
// new stream while the node is behind its streams, or while it holds
// Config.MaxStreams of them. Streams already open are never closed for
// it; a refused session keeps its trust and simply has no motion
// evidence, like a client that does not stream, until it retries.

// ErrNodeBusy is wrapped by every refusal of a new stream for the node's
// load (*BusyError).
var ErrNodeBusy = errors.New("node busy")

// Why a node refused to open a stream, as the refused-streams metric
// labels them.
const (
	BusyBehind   = "behind"
	BusyCapacity = "capacity"
)

// How long a refused client is told to wait before it tries again. A
// node behind its streams catches up over a few seconds of read-lag
// samples (one a second); a full node frees a place only when a stream
// ends, which takes longer.
const (
	retryBehind   = 5 * time.Second
	retryCapacity = 15 * time.Second
)

// BusyError is a refused stream opening: why, for the client, and when to
// try again.
type BusyError struct {
	Cause      string // BusyBehind or BusyCapacity
	Reason     string
	RetryAfter time.Duration
}

func (e *BusyError) Error() string { return "node busy: " + e.Reason }

func (e *BusyError) Unwrap() error { return ErrNodeBusy }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up.
func (e *BusyError) RetryAfterSeconds() int {
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// admission decides whether the node opens one more stream. open counts
// the streams the node holds; it is changed only under registry.mu,
// alongside the registry, so the cap is exact, and read without a lock
// by offers, which only ask.
type admission struct {
	max    int // 0: no cap
	open   atomic.Int64
	behind func(now time.Time) (bool, time.Duration) // the engine's state at now, and its read lag
}

// check returns nil when one more stream may open at now, and why not
// otherwise.
func (a *admission) check(now time.Time) *BusyError {
	if behind, lag := a.behind(now); behind {
		return &BusyError{Cause: BusyBehind, RetryAfter: retryBehind,
			Reason: fmt.Sprintf("this node is behind its XR streams by %s: it opens no new stream until it catches up", lag.Round(time.Millisecond))}
	}
	if a.max > 0 && a.open.Load() >= int64(a.max) {
		return &BusyError{Cause: BusyCapacity, RetryAfter: retryCapacity,
			Reason: fmt.Sprintf("this node is at capacity: it serves %d XR streams, its most", a.max)}
	}
	return nil
}
