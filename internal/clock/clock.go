package clock

import "time"

// Clock tells the time and acts when a time comes.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// AfterFunc calls f once d has passed, unless the returned Timer is
	// stopped first. With Real, f runs on a goroutine of its own; with
	// Manual, on the goroutine that advances the clock.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTimer returns a Timer that sends the time on its channel once d
	// has passed.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a Ticker that sends the time on its channel every
	// d; d must be positive.
	NewTicker(d time.Duration) Ticker
}

// Timer is a time.Timer, or a Manual clock's timer.
type Timer interface {
	// C is the timer's channel; nil for a timer made by AfterFunc.
	C() <-chan time.Time
	// Stop prevents the timer from firing and reports whether it stopped
	// it. After Stop no stale time is received from C.
	Stop() bool
	// Reset makes the timer fire d from now and reports whether it had
	// been active. After Reset no stale time is received from C.
	Reset(d time.Duration) bool
}

// Ticker is a time.Ticker, or a Manual clock's ticker.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// Or returns c, or Real if c is nil: what a Config's zero value means.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Real is the system's clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

// NewTimer is time.NewTimer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// NewTicker is time.NewTicker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
