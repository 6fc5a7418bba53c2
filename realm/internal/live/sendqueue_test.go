package live

import (
	"fmt"
	"testing"
)

// TestSendQueueKeepsOrderAndLetsGoWhenDrained: messages leave in the order
// they came through every growth and wrap of the ring; a drained queue
// keeps no more than an idle connection's few slots.
func TestSendQueueKeepsOrderAndLetsGoWhenDrained(t *testing.T) {
	var q sendQueue
	next, want := 0, 0
	offer := func(n int) {
		for range n {
			if !q.offer(fmt.Appendf(nil, "m%d", next), 64) {
				t.Fatalf("message %d refused with %d waiting", next, q.len())
			}
			next++
		}
	}
	takeN := func(n int) {
		for range n {
			msg, ok := q.take()
			if !ok || string(msg) != fmt.Sprintf("m%d", want) {
				t.Fatalf("took %q (%v), want m%d", msg, ok, want)
			}
			want++
		}
	}
	offer(3)
	takeN(2) // the ring's head moves on
	offer(40)
	takeN(30)
	offer(20) // wraps and grows again
	takeN(31)
	if _, ok := q.take(); ok {
		t.Fatal("took a message from a drained queue")
	}
	if len(q.ring) > sendQueueKept {
		t.Fatalf("a drained queue holds %d slots, want at most %d", len(q.ring), sendQueueKept)
	}
	offer(64)
	if q.offer([]byte("over"), 64) {
		t.Fatal("a full queue took one more message")
	}
	takeN(64)
}

// TestSlowClientIsClosedAtTheQueuesBound: a client that stops reading
// gets every message up to liveSendQueue waiting, then its connection is
// closed as too slow, as before the queue grew lazily; and likewise when
// the bytes waiting pass liveMaxQueuedBytes.
func TestSlowClientIsClosedAtTheQueuesBound(t *testing.T) {
	c := &socket{closing: make(chan closeFrame, 1)}
	for i := range liveSendQueue {
		c.push([]byte("{}"))
		if c.closed.Load() {
			t.Fatalf("closed after %d messages, want %d to wait", i+1, liveSendQueue)
		}
	}
	c.push([]byte("{}"))
	if !c.closed.Load() {
		t.Fatalf("not closed with %d messages waiting", c.send.len())
	}
	if f := <-c.closing; f.code != closeTooSlow {
		t.Fatalf("close code %d, want %d (too slow)", f.code, closeTooSlow)
	}

	big := &socket{closing: make(chan closeFrame, 1)}
	msg := make([]byte, liveMaxQueuedBytes/4)
	for range 4 {
		big.push(msg)
	}
	if big.closed.Load() {
		t.Fatal("closed with exactly the byte bound waiting")
	}
	big.push([]byte("{}"))
	if !big.closed.Load() {
		t.Fatal("not closed past the byte bound")
	}
}
