package netstamp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// udpPair is a stamping socket of g on loopback and a plain one that
// sends to it.
func udpPair(t testing.TB, g *UDPGroup) (stamped *UDPConn, sender *net.UDPConn) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	pc := g.Wrap(udp)
	t.Cleanup(func() { pc.Close() })
	sender, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })
	return pc.(*UDPConn), sender
}

func send(t testing.TB, from *net.UDPConn, to *UDPConn, payload string) {
	t.Helper()
	if _, err := from.WriteToUDPAddrPort([]byte(payload), to.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
}

func receive(t testing.TB, c *UDPConn, want string) {
	t.Helper()
	buf := make([]byte, 64)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, _, err := c.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
	}
}

// The stamp is when a datagram arrived, not when it was read: the second
// of two datagrams, read after the first one's read returned, carries a
// time from before that.
func TestUDPStampIsArrivalNotRead(t *testing.T) {
	var g UDPGroup
	c, sender := udpPair(t, &g)
	if _, ok := g.Received(); ok {
		t.Fatal("a stamp before anything was read")
	}
	if held, ok := (*UDPGroup)(nil).Held(time.Now()); ok || held != 0 {
		t.Fatalf("a nil group held %v, %v", held, ok)
	}
	before := time.Now()
	send(t, sender, c, "one")
	send(t, sender, c, "two") // loopback queues it before the write returns
	receive(t, c, "one")
	readAt := time.Now()
	receive(t, c, "two")
	at, ok := c.Received()
	if !ok {
		t.Fatal("no stamp after a read")
	}
	if at.Before(before) || at.After(readAt) {
		t.Fatalf("stamp %v: want the arrival, between the writes (%v) and the first read's return (%v), not the second read", at, before, readAt)
	}
	if gat, ok := g.Received(); !ok || !gat.Equal(at) {
		t.Fatalf("the group's stamp %v, %v; want its one socket's, %v", gat, ok, at)
	}
	if held, ok := g.Held(readAt.Add(time.Second)); !ok || held < time.Second {
		t.Fatalf("held %v a second after the first read, want at least a second", held)
	}
}

// A datagram that came unstamped clears the stamp of older ones.
func TestUDPUnstampedDatagramClearsTheStamp(t *testing.T) {
	var g UDPGroup
	c, sender := udpPair(t, &g)
	send(t, sender, c, "a")
	receive(t, c, "a")
	if _, ok := c.Received(); !ok {
		t.Fatal("no stamp for the first datagram")
	}
	setStamps(t, c, 0)
	send(t, sender, c, "b")
	receive(t, c, "b")
	if at, ok := c.Received(); ok {
		t.Fatalf("stamp %v kept for an unstamped datagram", at)
	}
	if held, ok := g.Held(time.Now()); ok || held != 0 {
		t.Fatalf("the group's held %v, %v after an unstamped datagram", held, ok)
	}
	setStamps(t, c, 1)
	send(t, sender, c, "c")
	receive(t, c, "c")
	if _, ok := g.Received(); !ok {
		t.Fatal("no stamp once stamps were asked for again")
	}

	// Control messages of the caller's that leave no room for the stamp
	// leave the datagram unstamped.
	send(t, sender, c, "d")
	if _, _, _, _, err := c.ReadMsgUDPAddrPort(make([]byte, 8), make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if at, ok := g.Received(); ok {
		t.Fatalf("stamp %v kept for a datagram whose stamp did not fit", at)
	}
}

// Across a group's sockets the newest stamp counts, whatever the order
// of their reads; an unstamped datagram read after it clears it, until
// a datagram that arrived later is read.
func TestUDPGroupTakesTheNewestOfItsSockets(t *testing.T) {
	var g, other UDPGroup
	a, sender := udpPair(t, &g)
	b, _ := udpPair(t, &g)
	o, _ := udpPair(t, &other)
	// The socket wrapped first gets the newer datagram, and is read first.
	send(t, sender, b, "older")
	send(t, sender, a, "newer")
	receive(t, a, "newer")
	receive(t, b, "older")
	older, _ := b.Received()
	newer, _ := a.Received()
	if !newer.After(older) {
		t.Fatalf("stamps %v then %v: the second datagram is not newer", older, newer)
	}
	if at, ok := g.Received(); !ok || !at.Equal(newer) {
		t.Fatalf("the group's stamp %v, %v: want the newest, %v, not the last read, %v", at, ok, newer, older)
	}

	// Another peer's datagrams never date this one's.
	send(t, sender, o, "elsewhere")
	receive(t, o, "elsewhere")
	if at, _ := g.Received(); !at.Equal(newer) {
		t.Fatalf("the group's stamp %v after another group's read, want %v", at, newer)
	}
	if at, _ := other.Received(); !at.After(newer) {
		t.Fatalf("the other group's stamp %v, want its own datagram's", at)
	}

	setStamps(t, b, 0)
	send(t, sender, b, "unstamped")
	receive(t, b, "unstamped")
	if at, ok := g.Received(); ok {
		t.Fatalf("stamp %v while the newest datagram of a socket came unstamped after it", at)
	}
	send(t, sender, a, "later")
	receive(t, a, "later")
	at, ok := g.Received()
	if latest, _ := a.Received(); !ok || !at.Equal(latest) {
		t.Fatalf("the group's stamp %v, %v: want that of the datagram after the unstamped one's read, %v", at, ok, latest)
	}
}

// Every read method returns what the socket's own does, and records.
func TestUDPReadsAsTheSocketDoes(t *testing.T) {
	var g UDPGroup
	c, sender := udpPair(t, &g)
	from := sender.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 32)
	reads := []struct {
		name string
		read func() (int, netip.AddrPort, error)
	}{
		{"ReadFromAddrPort", func() (int, netip.AddrPort, error) { return c.ReadFromAddrPort(buf) }},
		{"ReadFromUDPAddrPort", func() (int, netip.AddrPort, error) { return c.ReadFromUDPAddrPort(buf) }},
		{"ReadFromUDP", func() (int, netip.AddrPort, error) {
			n, a, err := c.ReadFromUDP(buf)
			return n, a.AddrPort(), err
		}},
		{"ReadFrom", func() (int, netip.AddrPort, error) {
			n, a, err := c.ReadFrom(buf)
			return n, a.(*net.UDPAddr).AddrPort(), err
		}},
		{"ReadMsgUDP", func() (int, netip.AddrPort, error) {
			n, _, _, a, err := c.ReadMsgUDP(buf, make([]byte, 64))
			return n, a.AddrPort(), err
		}},
		{"Read", func() (int, netip.AddrPort, error) {
			n, err := c.Read(buf)
			return n, from, err
		}},
	}
	for _, r := range reads {
		c.newest.Store(0)
		send(t, sender, c, r.name)
		n, addr, err := r.read()
		if err != nil || string(buf[:n]) != r.name || addr != from {
			t.Errorf("%s = %q from %v, %v; want %q from %v", r.name, buf[:n], addr, err, r.name, from)
		}
		if _, ok := g.Received(); !ok {
			t.Errorf("%s recorded no stamp", r.name)
		}
	}

	// An empty datagram is a datagram, and stamped.
	c.newest.Store(0)
	send(t, sender, c, "")
	if n, _, err := c.ReadFromAddrPort(buf); n != 0 || err != nil {
		t.Fatalf("empty datagram read as %d, %v", n, err)
	}
	if _, ok := c.Received(); !ok {
		t.Fatal("an empty datagram recorded no stamp")
	}
	if _, err := c.WriteToAddrPort([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	if n, _, err := sender.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "back" {
		t.Fatalf("the sender read %q, %v", buf[:n], err)
	}
}

func TestUDPReadEndsAsAUDPReadDoes(t *testing.T) {
	var g UDPGroup
	c, _ := udpPair(t, &g)
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if _, _, err := c.ReadFromAddrPort(make([]byte, 8)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	n, addr, err := c.ReadFrom(make([]byte, 8))
	if !errors.As(err, &ne) || !ne.Timeout() || n != 0 || addr != nil {
		t.Fatalf("ReadFrom past its deadline: %d, %#v, %v; want 0, a nil net.Addr and a timeout", n, addr, err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, _, err := c.ReadFromAddrPort(make([]byte, 8))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // most often blocked in the read by now; either way it must end
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read of a closed socket: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read blocked on a socket still waits 10 s after its close")
	}
	if _, ok := g.Received(); ok {
		t.Fatal("a stamp with no datagram read")
	}
}

// A read allocates nothing: pion's UDP reads are allocation-free, and a
// node short of CPU reads a datagram for every few frames.
func TestUDPReadAllocatesNothing(t *testing.T) {
	var g UDPGroup
	c, sender := udpPair(t, &g)
	buf := make([]byte, 64)
	to := c.LocalAddr().(*net.UDPAddr).AddrPort()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := sender.WriteToUDPAddrPort(buf[:8], to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadFromAddrPort(buf); err != nil {
			t.Fatal(err)
		}
		_, _ = g.Held(time.Now())
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a datagram read and its group's stamp asked, want 0", allocs)
	}
}

// BenchmarkUDPRead is one loopback datagram written and read (cpu-ns/op
// is the process's CPU time, user and system, an op): through a
// plain socket's ReadMsgUDPAddrPort with room for control messages, as
// pion's ICE reads one to learn its ECN bits, and through a stamping
// socket with its group's stamp asked, as the realm reads one.
func BenchmarkUDPRead(b *testing.B) {
	run := func(b *testing.B, read func(buf []byte) error, to netip.AddrPort, sender *net.UDPConn) {
		buf := make([]byte, 1200)
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		cpu0 := processCPU(b)
		for b.Loop() {
			if _, err := sender.WriteToUDPAddrPort(buf, to); err != nil {
				b.Fatal(err)
			}
			if err := read(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	}
	b.Run("plain", func(b *testing.B) {
		var g UDPGroup
		stamped, sender := udpPair(b, &g)
		c := stamped.UDPConn // the same socket, read past the stamping
		var oob [128]byte
		run(b, func(buf []byte) error {
			_, _, _, _, err := c.ReadMsgUDPAddrPort(buf, oob[:])
			return err
		}, c.LocalAddr().(*net.UDPAddr).AddrPort(), sender)
	})
	b.Run("stamped", func(b *testing.B) {
		var g UDPGroup
		c, sender := udpPair(b, &g)
		run(b, func(buf []byte) error {
			_, _, err := c.ReadFromAddrPort(buf)
			_, _ = g.Held(time.Now())
			return err
		}, c.LocalAddr().(*net.UDPAddr).AddrPort(), sender)
	})
}

// BenchmarkUDPGroupHeld is what the realm asks of a peer connection's
// sockets for each message it reads: the newest stamp among them (here
// three, as a peer connection's host candidates on a machine with two
// addresses and loopback), against the time.
func BenchmarkUDPGroupHeld(b *testing.B) {
	var g UDPGroup
	for range 3 {
		c, sender := udpPair(b, &g)
		send(b, sender, c, "x")
		receive(b, c, "x")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := g.Held(time.Now()); !ok {
			b.Fatal("no stamp")
		}
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
