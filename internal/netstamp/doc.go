// Package netstamp tells when the kernel received the bytes a TCP
// connection's reads return, so that a server can tell how long they
// waited in its own receive queue before it read them.
//
// A node short of CPU reads its sockets late. Measured at the read, every
// frame a client sent on time then looks late, and a check of the client's
// timing would blame the client for the node's own delay. The kernel
// stamps each segment as it arrives (SO_TIMESTAMPNS), before any of the
// node's code runs, so the stamp is when the client's bytes reached the
// machine whatever the node was doing: a client cannot forge it, and the
// node's backlog cannot move it.
//
// Listener wraps a listener so that the TCP connections it accepts record
// the stamp of each read; Received gives the newest, through any wrapping
// connection (such as TLS) that names the one beneath it.
//
// UDPGroup does the same for the UDP sockets of one peer (the ICE
// candidates of a WebRTC peer connection), whose datagrams a library
// reads and reassembles on goroutines of its own, so that the message
// boundary is lost before the caller sees a message: the group's newest
// stamp, asked for when a message is read, is no earlier than any of the
// message's datagrams arrived and no later than its read.
//
// On systems without receive stamps, Listener returns the listener
// unchanged, UDPGroup.Wrap the socket, Received and UDPGroup.Received
// report none, and callers fall back to the time they read.
package netstamp
