// Package vr is the Go SDK of a VR client: it opens the realm WebSocket with
// a session token, streams the headset's motion as binary XR frames over a
// WebRTC data channel (unordered, no retransmits) or, where WebRTC is not
// available, over the WebSocket itself, and reports the session's trust as
// the realm pushes it. A client joins a scene to see the other members
// come, go and move; one without a motion stream places its avatar with
// JSON poses.
//
// It imports nothing of the realm: the frame format and the messages are
// implemented from clients/PROTOCOL.md alone, and the realm's own tests
// stream through this package, which proves the document sufficient.
package vr
