package clock

import (
	"context"
	"sync"
	"time"
)

// Manual is a clock that moves only when told to: by Advance or Set. It is
// safe for concurrent use, so a test can move it while the code under test
// reads it and arms timers on it.
//
// Timers fire as the clock passes their time, in the order of their times
// (ties in the order they were armed): a channel timer or ticker gets the
// time it fired at on its channel, which holds one value, as time's do; an
// AfterFunc function runs on the goroutine that moves the clock, before
// the clock moves past its time, so that when Advance returns every
// function it made due has returned. A timer armed with a duration of zero
// or less fires at the next Advance or Set, even Advance(0).
//
// The functions run without the clock's lock held: they may read the
// clock and arm or stop timers, but must not move it. Moves made at once
// from several goroutines are made one after the other.
type Manual struct {
	// moving is held through a whole Advance or Set, so that moves made
	// at once from several goroutines add up, each firing its timers.
	moving sync.Mutex
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	wait   []*waiter // armed timers and tickers, unordered: there are few
	// changed is closed and replaced whenever a timer is armed, for
	// WaitArmed.
	changed chan struct{}
}

// NewManual returns a Manual clock that reads t until it is moved.
func NewManual(t time.Time) *Manual {
	return &Manual{now: t, changed: make(chan struct{})}
}

// Now returns the clock's reading.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d, firing the timers it passes. A
// negative d moves it back and fires nothing.
func (m *Manual) Advance(d time.Duration) {
	m.moving.Lock()
	defer m.moving.Unlock()
	m.mu.Lock()
	target := m.now.Add(d)
	m.mu.Unlock()
	m.moveTo(target)
}

// Set moves the clock to t, firing the timers due by then. A t before the
// clock's reading moves it back and fires nothing.
func (m *Manual) Set(t time.Time) {
	m.moving.Lock()
	defer m.moving.Unlock()
	m.moveTo(t)
}

// moveTo moves the clock to t, firing what is due; the caller holds
// m.moving.
func (m *Manual) moveTo(t time.Time) {
	for {
		m.mu.Lock()
		w := m.firstDue(t)
		if w == nil {
			m.now = t
			m.mu.Unlock()
			return
		}
		if w.at.After(m.now) {
			m.now = w.at
		}
		at := m.now
		if w.period > 0 {
			w.at = w.at.Add(w.period)
			w.seq = m.nextSeq()
		} else {
			m.disarm(w)
		}
		f, ch := w.f, w.ch
		m.mu.Unlock()
		if f != nil {
			f()
			continue
		}
		select {
		case ch <- at:
		default: // the last value is still unread: dropped, as time's timers do
		}
	}
}

// Armed is the number of timers and tickers that will fire if the clock
// moves far enough.
func (m *Manual) Armed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.wait)
}

// WaitArmed waits until at least n timers and tickers are armed, so that
// a test moves the clock only once the code it drives is waiting on it.
func (m *Manual) WaitArmed(ctx context.Context, n int) error {
	for {
		m.mu.Lock()
		armed, changed := len(m.wait), m.changed
		m.mu.Unlock()
		if armed >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// AfterFunc arms a timer that calls f when the clock reaches d from now.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	w := &waiter{m: m, f: f}
	m.arm(w, d)
	return w
}

// NewTimer arms a timer that sends the time on its channel when the clock
// reaches d from now.
func (m *Manual) NewTimer(d time.Duration) Timer {
	w := &waiter{m: m, ch: make(chan time.Time, 1)}
	m.arm(w, d)
	return w
}

// NewTicker arms a ticker that sends the time every d; it panics if d is
// not positive, as time.NewTicker does.
func (m *Manual) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &waiter{m: m, ch: make(chan time.Time, 1), period: d}
	m.arm(w, d)
	return tickerOf{w}
}

// waiter is a Manual clock's timer or ticker.
type waiter struct {
	m      *Manual
	at     time.Time
	seq    uint64
	period time.Duration // a ticker's; 0 for a timer
	f      func()        // an AfterFunc timer's
	ch     chan time.Time
	armed  bool
}

func (m *Manual) nextSeq() uint64 {
	m.seq++
	return m.seq
}

func (m *Manual) arm(w *waiter, d time.Duration) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.armLocked(w, d)
}

// armLocked arms w to fire d from now; the caller holds m.mu.
func (m *Manual) armLocked(w *waiter, d time.Duration) bool {
	was := w.armed
	w.at, w.seq = m.now.Add(d), m.nextSeq()
	if !w.armed {
		w.armed = true
		m.wait = append(m.wait, w)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return was
}

// disarm removes w from the armed set; the caller holds m.mu.
func (m *Manual) disarm(w *waiter) bool {
	if !w.armed {
		return false
	}
	w.armed = false
	for i, x := range m.wait {
		if x == w {
			m.wait[i] = m.wait[len(m.wait)-1]
			m.wait[len(m.wait)-1] = nil
			m.wait = m.wait[:len(m.wait)-1]
			break
		}
	}
	return true
}

// firstDue is the armed waiter due first at or before t, or nil; the
// caller holds m.mu.
func (m *Manual) firstDue(t time.Time) *waiter {
	var first *waiter
	for _, w := range m.wait {
		if w.at.After(t) {
			continue
		}
		if first == nil || w.at.Before(first.at) || (w.at.Equal(first.at) && w.seq < first.seq) {
			first = w
		}
	}
	return first
}

// drain empties the channel of a stopped or reset timer, so no stale time
// is received from it (time's timers behave so since Go 1.23).
func (w *waiter) drain() {
	if w.ch == nil {
		return
	}
	select {
	case <-w.ch:
	default:
	}
}

func (w *waiter) C() <-chan time.Time { return w.ch }

func (w *waiter) Stop() bool {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.drain()
	return w.m.disarm(w)
}

func (w *waiter) Reset(d time.Duration) bool {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	w.drain()
	return w.m.armLocked(w, d)
}

// tickerOf is a waiter seen as a Ticker.
type tickerOf struct{ w *waiter }

func (t tickerOf) C() <-chan time.Time { return t.w.ch }
func (t tickerOf) Stop()               { t.w.Stop() }

// Reset makes the ticker fire every d from now; d must be positive.
func (t tickerOf) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	t.w.m.mu.Lock()
	defer t.w.m.mu.Unlock()
	t.w.period = d
	t.w.drain()
	t.w.m.armLocked(t.w, d)
}
