package live

import (
	"io"
	"time"

	"github.com/gorilla/websocket"
)

// Control messages a connection may send: a steady rate with a burst for
// a client that catches up after a stall. The burst stays below
// liveSendQueue, so that the answers to a burst cannot overflow the
// client's own queue.
const (
	liveControlRate  = 50
	liveControlBurst = 20
	// liveControlAbuse is how many messages over the limit a client may
	// send within one second, after being told, before it is closed.
	liveControlAbuse = 100
)

// controlLimiter is a token bucket over a connection's control messages,
// with a count of the messages it refused in the current second. It is
// used by the connection's reader alone, so it needs no lock.
type controlLimiter struct {
	tokens     float64
	last       time.Time
	overStart  time.Time
	overInSpan int
}

// allow takes a token for a message received at now.
func (l *controlLimiter) allow(now time.Time) bool {
	if l.last.IsZero() {
		l.tokens = liveControlBurst
	} else {
		l.tokens = min(liveControlBurst, l.tokens+now.Sub(l.last).Seconds()*liveControlRate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	if now.Sub(l.overStart) >= time.Second {
		l.overStart, l.overInSpan = now, 0
	}
	l.overInSpan++
	return false
}

// abusive reports whether the refusals of the current second are beyond
// what a client that heeds its errors would send.
func (l *controlLimiter) abusive() bool { return l.overInSpan > liveControlAbuse }

// liveDrainWait is how long the rest of an oversized message is read and
// discarded after the close frame that refuses it.
const liveDrainWait = time.Second

// drainOversized reads what is left of an oversized message, which the
// WebSocket library has already refused with close code 1009: a socket
// closed with unread bytes resets the connection, and the client would
// lose the close frame that says why.
func drainOversized(ws *websocket.Conn) {
	nc := ws.UnderlyingConn()
	_ = nc.SetReadDeadline(time.Now().Add(liveDrainWait))
	_, _ = io.Copy(io.Discard, nc)
}
