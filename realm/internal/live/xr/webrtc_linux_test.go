package xr

import (
	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"

	"github.com/zerorealm/zerorealm/internal/netstamp"
)

// A stamped socket keeps pion's allocation-free read and write: ICE
// uses them for a socket that offers them, and falls back to ReadFrom,
// which makes a net.Addr for every datagram, for one that does not.
var (
	_ ice.AddrPortReaderWriter = (*netstamp.UDPConn)(nil)
	_ transport.UDPConn        = (*netstamp.UDPConn)(nil)
)
