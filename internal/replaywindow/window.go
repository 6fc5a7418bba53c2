package replaywindow

import (
	"sync"
	"time"
)

// ID names one message: a hash of what makes it unique (its signer and
// its nonce), cut to 16 bytes.
type ID [16]byte

// Outcome is what Add found.
type Outcome int

const (
	// Added: the id was new, and is remembered now.
	Added Outcome = iota
	// Repeated: the id was added within the window before.
	Repeated
	// Full: the window holds as many ids as it may; the message cannot
	// be checked against replay, and is refused until ids age out.
	Full
)

// Window remembers ids for at least period. It is safe for concurrent use.
type Window struct {
	period time.Duration
	max    int

	mu        sync.Mutex
	cur, prev map[ID]struct{}
	since     time.Time // when cur was started
}

// New returns a window that remembers each id for at least period, and
// at most max ids at once.
func New(period time.Duration, max int) *Window {
	return &Window{period: period, max: max, cur: map[ID]struct{}{}, prev: map[ID]struct{}{}}
}

// Add records id, seen at now, unless it was added before within the
// window or the window is full.
func (w *Window) Add(id ID, now time.Time) Outcome {
	w.mu.Lock()
	defer w.mu.Unlock()
	if el := now.Sub(w.since); el >= w.period {
		if el >= 2*w.period {
			w.prev = map[ID]struct{}{}
		} else {
			w.prev = w.cur
		}
		w.cur, w.since = map[ID]struct{}{}, now
	}
	if _, seen := w.cur[id]; seen {
		return Repeated
	}
	if _, seen := w.prev[id]; seen {
		return Repeated
	}
	if len(w.cur)+len(w.prev) >= w.max {
		return Full
	}
	w.cur[id] = struct{}{}
	return Added
}
