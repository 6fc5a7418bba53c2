//go:build linux

package realm

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pacer releases an open-loop benchmark's arrivals on schedule. A sleeping
// goroutine is a poor clock here: when every P is idle the Go runtime waits
// for its next timer in epoll with millisecond resolution, so a sleep of
// 200µs can end a millisecond late and the arrivals it held back then go
// out as a burst. That lateness is the load generator's, not the realm's:
// a client elsewhere sends on time and the realm hears it as soon as the
// socket is readable. A timerfd is such a socket: epoll wakes the moment it
// expires, and reading it says how many periods have passed.
type pacer struct {
	f     *os.File
	start time.Time
	every time.Duration
	next  int
	buf   [8]byte
}

func newPacer(every time.Duration) (*pacer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC|unix.TFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	period := unix.NsecToTimespec(int64(every))
	spec := unix.ItimerSpec{Interval: period, Value: period}
	start := time.Now()
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("timerfd_settime: %w", err)
	}
	// Non-blocking, so os.File waits for it in the runtime's poller.
	return &pacer{f: os.NewFile(uintptr(fd), "pacer"), start: start, every: every}, nil
}

// wait blocks until at least one more arrival is due and calls due with
// the time each was due, in order.
func (p *pacer) wait(due func(at time.Time)) error {
	if _, err := p.f.Read(p.buf[:]); err != nil {
		return err
	}
	for range binary.NativeEndian.Uint64(p.buf[:]) {
		p.next++
		due(p.start.Add(time.Duration(p.next) * p.every))
	}
	return nil
}

func (p *pacer) close() { _ = p.f.Close() }
