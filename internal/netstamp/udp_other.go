//go:build !linux

package netstamp

import (
	"net"
	"time"
)

// UDPStamps is whether this system's UDP sockets can record receive
// stamps: where it is false, UDPGroup.Wrap returns the socket unchanged.
const UDPStamps = false

// UDPGroup gathers nothing on this system, which gives no receive stamps.
type UDPGroup struct{}

// Wrap returns c unchanged.
func (g *UDPGroup) Wrap(c *net.UDPConn) net.PacketConn { return c }

// Received reports no stamp.
func (g *UDPGroup) Received() (time.Time, bool) { return time.Time{}, false }

// Held reports no stamp.
func (g *UDPGroup) Held(time.Time) (time.Duration, bool) { return 0, false }

// HoldKernelStamping does nothing on this system, which gives no stamps.
func HoldKernelStamping() error { return nil }
