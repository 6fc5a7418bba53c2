//go:build !linux

package realm

import "time"

// pacer releases an open-loop benchmark's arrivals on schedule; see the
// Linux version, which wakes on a timerfd. Elsewhere the Go runtime's
// timers do, and an idle process may wake up to a millisecond late.
type pacer struct {
	start time.Time
	every time.Duration
	next  int
}

func newPacer(every time.Duration) (*pacer, error) {
	return &pacer{start: time.Now(), every: every}, nil
}

func (p *pacer) wait(due func(at time.Time)) error {
	p.next++
	at := p.start.Add(time.Duration(p.next) * p.every)
	time.Sleep(time.Until(at))
	due(at)
	return nil
}

func (p *pacer) close() {}
