// Package xr is the realm's XR edge: the motion a headset streams over the
// realm WebSocket (binary frame messages) or over a WebRTC data channel it
// signals on that socket, scored against the avatar's biometric template
// as trust evidence; the enrollment and storage of templates, sealed at
// rest and kept in step across the cluster; and the template API. Frames
// are dated by the kernel's receive stamps where the node has them: the
// WebSocket's (the live package reads them), and those of each peer
// connection's own UDP sockets, which it wires into pion.
//
// It sees the live connection through Conn, declared here, and gives each
// connection a Link; the live package, its parent, owns the connections.
// What it needs of the rest of the realm (trust, step-ups, audit, the
// session's other connections) comes in Deps as small interfaces. It
// imports the shared edge and nothing else of the realm.
package xr
