package cork

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// writeCounter counts the writes that reach the connection beneath, the
// system calls the package is there to save.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *writeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// pair is a loopback TCP connection: the accepted end wrapped by Listener
// over a write counter, and the dialled end to read what it sent.
func pair(t *testing.T) (*Conn, *writeCounter, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	counted := &countingListener{Listener: ln}
	wrapped := Listener(counted)
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialed.Close() })
	accepted, err := wrapped.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { accepted.Close() })
	c := Of(accepted)
	if c == nil {
		t.Fatalf("Of(%T) = nil, want the listener's Conn", accepted)
	}
	return c, counted.last, dialed
}

type countingListener struct {
	net.Listener
	last *writeCounter
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.last = &writeCounter{Conn: c}
	return l.last, nil
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestHeldWritesLeaveInOneWrite: what is written while held reaches the
// connection beneath as one write at Flush, in order, and a connection
// not held writes through at once.
func TestHeldWritesLeaveInOneWrite(t *testing.T) {
	c, under, peer := pair(t)
	if _, err := c.Write([]byte("now ")); err != nil {
		t.Fatal(err)
	}
	if got := under.count(); got != 1 {
		t.Fatalf("%d writes beneath an unheld write, want 1", got)
	}
	c.Hold()
	for _, part := range []string{"a score, ", "a status, ", "a trust change"} {
		if _, err := c.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if got := under.count(); got != 1 {
		t.Fatalf("%d writes beneath while held, want still 1", got)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := under.count(); got != 2 {
		t.Fatalf("%d writes beneath after Flush, want 2", got)
	}
	const want = "now a score, a status, a trust change"
	if got := readN(t, peer, len(want)); string(got) != want {
		t.Fatalf("peer read %q, want %q", got, want)
	}
	if c.buf != nil {
		t.Fatal("a flushed connection keeps its buffer")
	}
	if err := c.Flush(); err != nil || under.count() != 2 {
		t.Fatalf("a second Flush: %v, %d writes; want nothing written", err, under.count())
	}
}

// TestHeldWritesKeepOrderPastTheBuffer: a write that would not fit what is
// held sends what is held first, and one larger than the buffer goes on
// its own; the peer reads every byte in the order written.
func TestHeldWritesKeepOrderPastTheBuffer(t *testing.T) {
	c, under, peer := pair(t)
	var want bytes.Buffer
	c.Hold()
	for i, n := range []int{100, HeldBytes - 50, 3 * HeldBytes, 10, 20} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		want.Write(p)
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	// The first 100 bytes go when the next write does not fit (1), those
	// 8,142 when the large one comes (2), the large one on its own (3),
	// the last two at Flush (4).
	if got := under.count(); got != 4 {
		t.Errorf("%d writes beneath, want 4", got)
	}
	if got := readN(t, peer, want.Len()); !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the peer read the bytes out of order")
	}
}

// TestConcurrentWritesJoinWhatIsHeld: writes from another goroutine while
// the connection is held (a WebSocket library's pong, from its reader)
// join it whole; with writes of distinct bytes the peer sees every write
// intact, none interleaved with another.
func TestConcurrentWritesJoinWhatIsHeld(t *testing.T) {
	c, _, peer := pair(t)
	const writers, each, size = 4, 200, 37
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			p := bytes.Repeat([]byte{byte('A' + w)}, size)
			for range each {
				if _, err := c.Write(p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range each {
			c.Hold()
			if err := c.Flush(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	got := readN(t, peer, writers*each*size)
	wg.Wait()
	for i := 0; i < len(got); i += size {
		if !bytes.Equal(got[i:i+size], bytes.Repeat(got[i:i+1], size)) {
			t.Fatalf("write at byte %d interleaved with another: %q", i, got[i:i+size])
		}
	}
}

// TestFlushReportsTheFailedWrite: a write that fails while held (here,
// the one that would not fit, on a closed connection) is reported by
// Flush, and the writes after it fail too.
func TestFlushReportsTheFailedWrite(t *testing.T) {
	c, under, _ := pair(t)
	c.Hold()
	if _, err := c.Write(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	under.Conn.Close()
	if _, err := c.Write(make([]byte, HeldBytes)); err == nil {
		t.Fatal("a write on a closed connection reported success")
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("a write after a failed one reported success")
	}
	if err := c.Flush(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Flush = %v, want the closed connection's error", err)
	}
}

// TestCloseUnblocksAndDropsWhatIsHeld: Close does not wait for the lock a
// held connection's writes take, and leaves no buffer behind.
func TestCloseUnblocksAndDropsWhatIsHeld(t *testing.T) {
	c, under, _ := pair(t)
	c.Hold()
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if c.buf != nil || under.count() != 0 {
		t.Fatalf("after Close: buffer %v, %d writes; want none", c.buf != nil, under.count())
	}
}

// TestOfUnwraps: Of finds the Conn through wrappers that name the one
// beneath, and nil for a connection without one.
func TestOfUnwraps(t *testing.T) {
	c, _, peer := pair(t)
	if got := Of(named{named{c}}); got != c {
		t.Fatalf("Of through two wrappers = %p, want %p", got, c)
	}
	if got := Of(peer); got != nil {
		t.Fatal("Of found a Conn in a plain TCP connection")
	}
}

type named struct{ net.Conn }

func (n named) NetConn() net.Conn { return n.Conn }
