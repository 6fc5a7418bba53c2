// Package cork lets a connection's writer send several small messages in
// one system call.
//
// A WebSocket library writes each message to its connection at once, one
// write(2) apiece, and on a server that sends every streaming client two
// small messages a second (a score and a status) the writes are a
// twentieth of its CPU. Over loopback, and on the client's side of any
// link, each write is also a segment for the peer to receive. The
// connection's writer knows when it has more queued: it holds the
// connection (Conn.Hold), writes the messages it has, and flushes them
// together (Conn.Flush), as TCP_CORK would in the kernel but without
// the two extra system calls that setting it costs per batch.
//
// Listener wraps a listener so that its connections can be held; Of finds
// the holdable connection beneath any wrapper that names the one under it
// (NetConn, as *tls.Conn and gorilla/websocket's Conn do). A connection
// that is not held writes through at once, so that an HTTP server and
// everything else on it see an ordinary connection.
package cork
