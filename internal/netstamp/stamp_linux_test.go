package netstamp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// pair is a connection accepted through Listener and its dialled peer.
func pair(t *testing.T) (server net.Conn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = Listener(ln).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if _, ok := server.(*Conn); !ok {
		t.Fatalf("accepted %T, want a stamped *Conn", server)
	}
	return server, client
}

func readFull(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	return buf
}

// The stamp is when the bytes arrived, not when they were read: bytes
// read after a pause carry the time of their arrival, before the pause.
func TestStampIsArrivalNotRead(t *testing.T) {
	server, client := pair(t)
	if _, ok := Received(server); ok {
		t.Fatal("a stamp before anything was read")
	}
	before := time.Now()
	if _, err := client.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	// The first byte's read proves both are queued (one segment); the
	// second is read after readAt, from the same segment.
	readFull(t, server, 1)
	readAt := time.Now()
	readFull(t, server, 1)
	at, ok := Received(server)
	if !ok {
		t.Fatal("no stamp after a read")
	}
	if at.Before(before) || at.After(readAt) {
		t.Fatalf("stamp %v: want the arrival, between the write (%v) and the first read's return (%v), not the second read", at, before, readAt)
	}
	if held, ok := Held(server, readAt.Add(time.Second)); !ok || held < time.Second {
		t.Fatalf("held %v a second after the first read, want at least a second", held)
	}
}

// A read that takes several segments carries the newest one's stamp.
func TestStampIsTheNewestSegments(t *testing.T) {
	server, client := pair(t)
	if _, err := client.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	readFull(t, server, 1) // "a" has arrived
	first, _ := Received(server)
	if _, err := client.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	secondSent := time.Now()
	if _, err := client.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	got := readFull(t, server, 2)
	at, _ := Received(server)
	if string(got) != "bc" {
		t.Fatalf("read %q", got)
	}
	if !at.After(first) || at.Before(secondSent) {
		t.Fatalf("stamp %v: want that of the newest segment, after the first's (%v) and no earlier than the last write began (%v)", at, first, secondSent)
	}
}

func TestReadEndsAsATCPReadDoes(t *testing.T) {
	server, client := pair(t)
	if err := server.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := server.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := server.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	if _, err := client.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, server); err != nil || out.String() != "bye" {
		t.Fatalf("copied %q, %v: want the bytes, then the end", out.String(), err)
	}
	if _, err := server.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want io.EOF", err)
	}
	server.Close()
	if _, err := server.Read(make([]byte, 8)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read of a closed connection: %v, want its error", err)
	}
}

// Bytes that arrive unstamped clear the stamp of older ones, which would
// otherwise date them and make them look held for longer than they were.
func TestUnstampedBytesClearTheStamp(t *testing.T) {
	server, client := pair(t)
	if _, err := client.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	readFull(t, server, 1)
	if _, ok := Received(server); !ok {
		t.Fatal("no stamp for the first byte")
	}
	setStamps(t, server.(*Conn), 0)
	if _, err := client.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	readFull(t, server, 1)
	if at, ok := Received(server); ok {
		t.Fatalf("stamp %v kept for unstamped bytes", at)
	}
	if held, ok := Held(server, time.Now()); ok || held != 0 {
		t.Fatalf("held %v, %v for unstamped bytes", held, ok)
	}
	setStamps(t, server.(*Conn), 1)
	if _, err := client.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	readFull(t, server, 1)
	if _, ok := Received(server); !ok {
		t.Fatal("no stamp once stamps were asked for again")
	}
}

// The listening socket asks for stamps itself, so the kernel's switch is
// on from listen time and accepted sockets inherit the option.
func TestListenerAsksAtListenTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := stampOption(t, ln.(*net.TCPListener)); got != 0 {
		t.Fatalf("a plain listener has SO_TIMESTAMPNS %d", got)
	}
	Listener(ln)
	if got := stampOption(t, ln.(*net.TCPListener)); got != 1 {
		t.Fatalf("the wrapped listener has SO_TIMESTAMPNS %d, want 1", got)
	}
}

func setStamps(t *testing.T, c syscall.Conn, on int) {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, on)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
}

func stampOption(t *testing.T, c syscall.Conn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

type wrapper struct{ net.Conn }

func (w wrapper) NetConn() net.Conn { return w.Conn }

func TestReceivedUnwrapsAndRefusesTheUnstamped(t *testing.T) {
	server, client := pair(t)
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	readFull(t, server, 1)
	direct, _ := Received(server)
	if at, ok := Received(wrapper{wrapper{server}}); !ok || !at.Equal(direct) {
		t.Fatalf("through two wrappers: %v %v, want %v", at, ok, direct)
	}
	if _, ok := Received(client); ok {
		t.Fatal("a dialled connection, never stamped, gave a stamp")
	}
	if held, ok := Held(client, time.Now()); ok || held != 0 {
		t.Fatalf("held %v, %v without a stamp", held, ok)
	}
	if held, _ := Held(server, direct.Add(-time.Hour)); held != 0 {
		t.Fatalf("held %v with now before the stamp (a wall clock step), want 0", held)
	}
}

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, syscall.CmsgSpace(len(data)))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(syscall.CmsgLen(len(data)))
	copy(b[syscall.CmsgLen(0):], data)
	return b
}

func timespecBytes(sec, nsec int64) []byte {
	ts := syscall.NsecToTimespec(sec*1e9 + nsec)
	return unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
}

func TestParseStamp(t *testing.T) {
	want := time.Date(2026, 12, 6, 14, 0, 0, 123456789, time.UTC)
	stamp := cmsg(syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, timespecBytes(want.Unix(), int64(want.Nanosecond())))
	other := cmsg(syscall.SOL_SOCKET, syscall.SCM_RIGHTS, []byte{1, 2, 3, 4})
	cases := []struct {
		name string
		oob  []byte
		ok   bool
	}{
		{"alone", stamp, true},
		{"after another message", append(append([]byte{}, other...), stamp...), true},
		{"empty", nil, false},
		{"another message only", other, false},
		{"truncated header", stamp[:4], false},
		{"truncated stamp", stamp[:syscall.CmsgLen(0)+4], false},
		{"length past the buffer", func() []byte {
			b := append([]byte{}, stamp...)
			(*syscall.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(len(b) + 8)
			return b
		}(), false},
		{"length under a header", func() []byte {
			b := append([]byte{}, stamp...)
			(*syscall.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(2)
			return b
		}(), false},
		{"nanoseconds out of range", cmsg(syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, func() []byte {
			ts := syscall.Timespec{Sec: want.Unix(), Nsec: 2e9}
			return unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
		}()), false},
	}
	for _, c := range cases {
		ns, ok := parseStamp(c.oob)
		if ok != c.ok || ok && ns != want.UnixNano() {
			t.Errorf("%s: %d %v, want %v (%d)", c.name, ns, ok, c.ok, want.UnixNano())
		}
	}
}

func FuzzParseStamp(f *testing.F) {
	f.Add(cmsg(syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, timespecBytes(1_800_000_000, 5)))
	f.Add(cmsg(syscall.SOL_SOCKET, syscall.SCM_RIGHTS, []byte{9, 9, 9, 9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, oob []byte) {
		ns, ok := parseStamp(oob)
		if ok && (ns <= 0) {
			t.Fatalf("stamp %d accepted", ns)
		}
	})
}
