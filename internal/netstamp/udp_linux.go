package netstamp

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// UDPStamps is whether this system's UDP sockets can record receive
// stamps: where it is false, UDPGroup.Wrap returns the socket unchanged.
const UDPStamps = true

// UDPGroup is the UDP sockets of one peer, such as the ICE candidates of
// one WebRTC peer connection. Received bounds from above when the machine
// received any datagram those sockets have returned so far: it is the
// newest stamp among them, never older than a datagram already read.
//
// Each socket's datagrams are read in the order they arrived, so its own
// newest stamp bounds all it returned; across sockets they are not, and
// the newest of their stamps is taken. A socket whose newest datagram
// came unstamped dates it only by its read: the group then reports no
// stamp unless another socket's is newer than that read, which bounds
// the unstamped datagram as well.
type UDPGroup struct {
	mu    sync.Mutex                 // serialises Wrap
	conns atomic.Pointer[[]*UDPConn] // replaced, never changed: Received reads it without the lock
}

// Wrap returns c with its reads recording receive stamps into g. A
// socket that refuses to ask for stamps is wrapped all the same, so that
// its datagrams, unstamped, clear what the group reports.
func (g *UDPGroup) Wrap(c *net.UDPConn) net.PacketConn {
	sc := NewUDPConn(c)
	g.mu.Lock()
	defer g.mu.Unlock()
	var conns []*UDPConn
	if old := g.conns.Load(); old != nil {
		conns = append(conns, *old...)
	}
	conns = append(conns, sc)
	g.conns.Store(&conns)
	return sc
}

// Received reports the newest stamp of the group's sockets, and false
// when none has one or a newer datagram came unstamped. A nil group,
// that of sockets not stamped, has none.
func (g *UDPGroup) Received() (time.Time, bool) {
	if g == nil {
		return time.Time{}, false
	}
	conns := g.conns.Load()
	if conns == nil {
		return time.Time{}, false
	}
	var stamped, unstampedRead int64
	for _, c := range *conns {
		switch v := c.newest.Load(); {
		case v > 0:
			stamped = max(stamped, v)
		case v < 0:
			unstampedRead = max(unstampedRead, -v)
		}
	}
	if stamped == 0 || unstampedRead > stamped {
		return time.Time{}, false
	}
	return time.Unix(0, stamped), true
}

// Held is how long before now the group's newest stamped datagram
// arrived, as Held is for a connection.
func (g *UDPGroup) Held(now time.Time) (time.Duration, bool) {
	at, ok := g.Received()
	return heldSince(at, ok, now)
}

// UDPConn is a UDP socket whose reads record the kernel's receive stamp
// of the datagram each returns. Every read method goes through recvmsg,
// so none bypasses the stamp; everything else is the *net.UDPConn's own.
// ReadFromAddrPort and WriteToAddrPort are the allocation-free pair that
// packet libraries look for beside net.PacketConn.
type UDPConn struct {
	*net.UDPConn
	// newest is the newest datagram's stamp in Unix nanoseconds; for an
	// unstamped one, the negated time it was read; 0 before the first.
	// Other goroutines than the reader load it.
	newest atomic.Int64

	// mu holds reads one at a time, from the datagram through to its
	// record: two at once could record an older stamp over a newer one.
	mu  sync.Mutex
	oob [64]byte
}

// NewUDPConn returns c asking the kernel for receive stamps. When c
// refuses, its reads record every datagram as unstamped.
func NewUDPConn(c *net.UDPConn) *UDPConn {
	if raw, err := c.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) { _ = enableStamps(fd) })
	}
	return &UDPConn{UDPConn: c}
}

// ReadMsgUDPAddrPort reads as the *net.UDPConn does and records the
// datagram's stamp from oob, which the caller's control messages share:
// one too short for the stamp leaves the datagram unstamped.
func (c *UDPConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, oobn, flags, addr, err = c.UDPConn.ReadMsgUDPAddrPort(b, oob)
	if err == nil {
		c.record(oob[:oobn], flags)
	}
	return n, oobn, flags, addr, err
}

// ReadFromUDPAddrPort reads one datagram and records its stamp.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, oobn, flags, addr, err := c.UDPConn.ReadMsgUDPAddrPort(b, c.oob[:])
	if err == nil {
		c.record(c.oob[:oobn], flags)
	}
	return n, addr, err
}

// ReadFromAddrPort is ReadFromUDPAddrPort.
func (c *UDPConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

// WriteToAddrPort is the socket's WriteToUDPAddrPort.
func (c *UDPConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}

// ReadFromUDP reads one datagram and records its stamp.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, addr, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// ReadFrom reads one datagram and records its stamp.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromUDP(b)
	if err != nil {
		return n, nil, err // a nil net.Addr, not a nil *net.UDPAddr in one
	}
	return n, addr, nil
}

// Read reads one datagram and records its stamp.
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// ReadMsgUDP is ReadMsgUDPAddrPort with the address as a *net.UDPAddr.
func (c *UDPConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, oobn, flags, ap, err := c.ReadMsgUDPAddrPort(b, oob)
	if err == nil {
		addr = net.UDPAddrFromAddrPort(ap)
	}
	return n, oobn, flags, addr, err
}

// record keeps the stamp of the datagram just read, whose control
// messages are oob. Unlike a TCP read, an empty datagram is a datagram.
func (c *UDPConn) record(oob []byte, flags int) {
	at, ok := stampOf(oob, flags)
	if !ok {
		// Dated only by this read: kept as such, the group can tell
		// whether another socket's stamp is newer and so bounds it too.
		at = -time.Now().UnixNano()
	}
	c.newest.Store(at)
}

// Received reports the kernel's stamp of the newest datagram read, and
// false before the first or when it came unstamped.
func (c *UDPConn) Received() (time.Time, bool) {
	ns := c.newest.Load()
	if ns <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// HoldKernelStamping opens a loopback UDP socket that asks for receive
// stamps and keeps it open for the rest of the process, which holds the
// kernel's machine-wide stamping switch on. Linux turns that switch on in
// a worker some time after the first socket asks, and off the same way
// after the last one closes; datagrams and segments that arrive meanwhile
// come unstamped. It returns once a datagram of its own arrives stamped,
// so that what runs after it (a test, most often) never races the
// switch, or an error when none is stamped within 10 s.
func HoldKernelStamping() error {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	c := NewUDPConn(udp)
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 8)
	for time.Now().Before(deadline) {
		if _, err := c.WriteToUDP([]byte("stamp?"), udp.LocalAddr().(*net.UDPAddr)); err != nil {
			c.Close()
			return err
		}
		if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			c.Close()
			return err
		}
		if _, err := c.Read(buf); err != nil {
			c.Close()
			return err
		}
		if _, ok := c.Received(); ok {
			return nil // c stays open until the process ends
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	return errors.New("the kernel stamped no loopback datagram within 10 s: it gives no receive stamps")
}
