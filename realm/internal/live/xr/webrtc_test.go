package xr

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/zerorealm/zerorealm/biometrics"
)

// scriptedChannel is a detached data channel's read side that returns
// queued messages as pion's does: one that does not fit the buffer stays
// queued, and io.ErrShortBuffer comes back without its length.
type scriptedChannel struct {
	queue  [][]byte
	texts  map[int]bool
	served int
	// shortReads counts the reads into too short a buffer.
	shortReads int
}

func (c *scriptedChannel) ReadDataChannel(p []byte) (int, bool, error) {
	if len(c.queue) == 0 {
		return 0, false, io.EOF
	}
	m := c.queue[0]
	if len(m) > len(p) {
		c.shortReads++
		return 0, false, io.ErrShortBuffer
	}
	c.queue = c.queue[1:]
	isText := c.texts[c.served]
	c.served++
	return copy(p, m), isText, nil
}

// TestReadMessagesHandsOnWhatItCannotHold: a message longer than a frame
// message is handed on whole (to be refused), text is flagged, and a
// message beyond what the realm reads ends the channel without being
// handed on.
func TestReadMessagesHandsOnWhatItCannotHold(t *testing.T) {
	long := bytes.Repeat([]byte{7}, biometrics.MaxMessageSize+100)
	ch := &scriptedChannel{
		queue: [][]byte{[]byte("frames"), []byte("text"), long, []byte("after"), make([]byte, xrMaxReadMessage+1), []byte("never")},
		texts: map[int]bool{1: true},
	}
	var got []string
	var gotText []bool
	err := readMessages(ch, func(msg []byte, isString bool) {
		if bytes.Equal(msg, long) {
			got = append(got, "long")
		} else {
			got = append(got, string(msg))
		}
		gotText = append(gotText, isString)
	})
	if !errors.Is(err, errMessageTooLarge) {
		t.Fatalf("readMessages = %v, want errMessageTooLarge", err)
	}
	want := []string{"frames", "text", "long", "after"}
	if len(got) != len(want) {
		t.Fatalf("handed on %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] || gotText[i] != (i == 1) {
			t.Fatalf("message %d = %q (text %v), want %q (text %v)", i, got[i], gotText[i], want[i], i == 1)
		}
	}
	// The long message took one doubling; the one beyond the limit every
	// doubling up to it.
	if ch.shortReads < 2 || ch.shortReads > 12 {
		t.Fatalf("%d reads into too short a buffer, want a doubling each", ch.shortReads)
	}

	// A channel that ends is the end of reading, and no error of the
	// realm's.
	if err := readMessages(&scriptedChannel{}, func([]byte, bool) { t.Fatal("nothing to hand on") }); !errors.Is(err, io.EOF) {
		t.Fatalf("readMessages on a closed channel = %v, want io.EOF", err)
	}
}
