package edge

import "time"

// What the realm's WebSockets (the realm WebSocket, the twin console
// feed) have in common: their close codes and their timing.

// Close codes (4000-4999 are the application's).
const (
	// CloseSessionEnded ends a connection whose session was revoked or
	// expired: sign in again.
	CloseSessionEnded = 4401
	// CloseTooSlow ends a connection whose client did not keep up with
	// its messages.
	CloseTooSlow = 4408
)

const (
	// SocketSendQueue is how many messages may wait for one connection
	// before it is cut off as too slow.
	SocketSendQueue = 1024
	// SocketWriteWait is how long a single write may take.
	SocketWriteWait = 5 * time.Second
	// SocketPingPeriod keeps NAT and proxies from dropping an idle
	// connection.
	SocketPingPeriod = 25 * time.Second
	// SocketPongWait is how long a connection may stay silent, pongs
	// included, before it is taken for dead.
	SocketPongWait = 60 * time.Second
)
