//go:build linux

package realm

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"
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

// Linux's values, the same on every architecture.
const (
	clockMonotonic = 1
	tfdCloexec     = 0x80000
	tfdNonblock    = 0x800
)

func newPacer(every time.Duration) (*pacer, error) {
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, tfdCloexec|tfdNonblock, 0)
	if errno != 0 {
		return nil, fmt.Errorf("timerfd_create: %w", errno)
	}
	period := syscall.NsecToTimespec(int64(every))
	spec := struct{ interval, value syscall.Timespec }{period, period}
	start := time.Now()
	if _, _, errno := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
		syscall.Close(int(fd))
		return nil, fmt.Errorf("timerfd_settime: %w", errno)
	}
	// Non-blocking, so os.File waits for it in the runtime's poller.
	return &pacer{f: os.NewFile(fd, "pacer"), start: start, every: every}, nil
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
