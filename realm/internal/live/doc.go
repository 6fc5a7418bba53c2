// Package live is the realm WebSocket (GET /v1/realm) and what travels on
// it: one connection per session (a newer one replaces the older, on any
// node), notices to every session of an avatar, the session's end closing
// the socket, and the presence of avatars in scenes: joins and zone
// changes decided by the scenes' policies, and everyone's poses fanned out
// by interest twenty times a second, shared with the other nodes over core
// NATS with authenticated messages. AI agents connect too, with their
// delegation and a DPoP proof (agents.go): each member is marked a person
// or its owner's agent, and an agent's connection ends when its
// delegation stops standing.
//
// The XR transports that ride on the socket (frame messages, WebRTC
// signalling) are its sub-package xr, which sees a connection through
// xr.Conn. What the live edge needs of the rest of the realm (scenes,
// trust, decisions, cluster message tags, the API's representations) comes
// in Deps as small interfaces; it imports the shared edge, its own xr and
// nothing else of the realm.
package live
