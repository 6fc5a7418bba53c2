//go:build !linux

package netstamp

import (
	"net"
	"time"
)

// Listener returns ln unchanged: this system gives no receive stamps.
func Listener(ln net.Listener) net.Listener { return ln }

// Conn is never made on this system; Received never finds one.
type Conn struct{ net.Conn }

// Received reports no stamp.
func (c *Conn) Received() (time.Time, bool) { return time.Time{}, false }
