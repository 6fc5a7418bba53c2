package netstamp

import (
	"net"
	"time"
)

// Received reports when the kernel received the newest bytes read so far
// from c, unwrapping connections that name the one beneath them (as
// *tls.Conn does with NetConn). It reports false for a connection not
// accepted through Listener, before its first read, or when the newest
// bytes came without a stamp.
func Received(c net.Conn) (time.Time, bool) {
	for range 8 { // a chain of wrappers, not a cycle
		switch x := c.(type) {
		case *Conn:
			return x.Received()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return time.Time{}, false
		}
	}
	return time.Time{}, false
}

// Held is how long the newest bytes read from c waited between the
// kernel's receipt and now, and false when c has no stamp. It is never
// below zero: the stamp and now come from the same wall clock, but a step
// of that clock between them must not make bytes look received in the
// future.
func Held(c net.Conn, now time.Time) (time.Duration, bool) {
	at, ok := Received(c)
	return heldSince(at, ok, now)
}

func heldSince(at time.Time, ok bool, now time.Time) (time.Duration, bool) {
	if !ok {
		return 0, false
	}
	return max(now.Sub(at), 0), true
}
