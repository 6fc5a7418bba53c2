package netstamp

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Listener returns ln with every TCP connection it accepts asking the
// kernel for receive stamps. A connection whose socket refuses the option
// is returned as accepted, without stamps.
//
// The listening socket asks too, when it is a TCP listener. Linux turns
// stamping on for the whole machine only when the first socket asks, and
// does so later, in a worker: segments that arrive before it runs carry
// no stamp. Asked at listen time, the switch is on long before the first
// connection's bytes, and the connections accepted inherit the option.
func Listener(ln net.Listener) net.Listener {
	if tl, ok := ln.(*net.TCPListener); ok {
		if raw, err := tl.SyscallConn(); err == nil {
			// A refusal here is not fatal: each accepted connection asks
			// again, and one that is refused is served without stamps.
			_ = raw.Control(func(fd uintptr) { _ = enableStamps(fd) })
		}
	}
	return &listener{Listener: ln}
}

func enableStamps(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
}

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	if sc, err := newConn(tc); err == nil {
		return sc, nil
	}
	return c, nil
}

// Conn is a TCP connection whose reads record the kernel's receive stamp
// of the newest bytes they return. Everything but Read is the TCP
// connection's own, so the HTTP server and WebSocket libraries see a
// *net.TCPConn's methods (write buffers, half-close, deadlines).
type Conn struct {
	*net.TCPConn
	raw syscall.RawConn
	// received is the newest stamp, in Unix nanoseconds (0 before the
	// first stamped read), read by other goroutines than the reader.
	received atomic.Int64

	mu     sync.Mutex // one Read at a time: the fields below are its own
	p      []byte
	n      int
	err    error
	oob    [64]byte
	recvFn func(fd uintptr) bool
}

func newConn(tc *net.TCPConn) (*Conn, error) {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = enableStamps(fd) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	c := &Conn{TCPConn: tc, raw: raw}
	c.recvFn = c.recv // bound once: a method value per Read would allocate
	return c, nil
}

// Read reads as the TCP connection would, through recvmsg, and keeps the
// stamp the kernel attaches: that of the newest segment the read took
// bytes from. Its errors are those of a TCP connection's Read, wrapped
// in *net.OpError, so deadlines still read as timeouts.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p, c.n, c.err = p, 0, nil
	err := c.raw.Read(c.recvFn)
	c.p = nil
	if err == nil {
		err = c.err
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if c.n == 0 {
		return 0, io.EOF // recvmsg's zero: the peer closed its side
	}
	return c.n, nil
}

// recv is one recvmsg attempt, run by the runtime's poller while the
// socket is readable; false asks it to wait for more.
func (c *Conn) recv(fd uintptr) bool {
	for {
		n, oobn, flags, _, err := syscall.Recvmsg(int(fd), c.p, c.oob[:], 0)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			c.err = err
			return true
		}
		c.n = n
		// Bytes that came without a stamp clear the last one: kept, it
		// would date these bytes by older ones and make them look held
		// for longer than they were. The kernel sends none for segments
		// that arrived before its stamping switch was on.
		at, _ := stampOf(c.oob[:oobn], flags)
		if n > 0 {
			c.received.Store(at)
		}
		return true
	}
}

// Received reports the kernel's stamp of the newest bytes read so far,
// and false before the first read or when those bytes came unstamped.
func (c *Conn) Received() (time.Time, bool) {
	ns := c.received.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// WriteTo copies what c reads to w through Read, so that the copy is
// stamped too: the TCP connection's own WriteTo would splice past it.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

// stampOf is the stamp among a received message's control messages oob,
// and false when it has none or recvmsg's flags say oob was cut short.
func stampOf(oob []byte, flags int) (int64, bool) {
	if flags&syscall.MSG_CTRUNC != 0 {
		return 0, false
	}
	return parseStamp(oob)
}

const maxStampSeconds = (1<<63 - 1) / int64(time.Second)

// parseStamp finds the SO_TIMESTAMPNS control message among a recvmsg's
// and returns its time in Unix nanoseconds. The bytes come from the
// kernel, but are read with every length checked all the same: a
// malformed buffer yields no stamp, never a read out of bounds.
func parseStamp(oob []byte) (int64, bool) {
	const hdr = int(unsafe.Sizeof(syscall.Cmsghdr{}))
	const tsLen = int(unsafe.Sizeof(syscall.Timespec{}))
	for len(oob) >= hdr {
		var h syscall.Cmsghdr
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), hdr), oob)
		total := int(h.Len)
		if total < syscall.CmsgLen(0) || total > len(oob) {
			return 0, false
		}
		data := oob[syscall.CmsgLen(0):total]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SO_TIMESTAMPNS && len(data) >= tsLen {
			var ts syscall.Timespec
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&ts)), tsLen), data)
			sec, nsec := ts.Unix()
			// Unix nanoseconds hold about 292 years from 1970.
			if sec <= 0 || sec >= maxStampSeconds || nsec < 0 || nsec >= 1e9 {
				return 0, false
			}
			return time.Unix(sec, nsec).UnixNano(), true
		}
		next := syscall.CmsgSpace(total - syscall.CmsgLen(0))
		if next <= 0 || next > len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
