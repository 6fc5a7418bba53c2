// Package realm is the world server and ZeroRealm's composition root: it
// connects to NATS (embedded or a cluster), declares the streams and buckets,
// loads the scenes and their policies, opens the audit log, and serves the
// HTTP edge (health, metrics, the /v1 API) until its context ends.
//
// Its edges are the HTTP API (passkeys, sessions, administrators and roles,
// scenes, assets, twins, audit), the realm WebSocket (/v1/realm: scene membership, presence, pose
// fan-out, zones decided by policy, trust updates, WebRTC signaling and XR
// frames) and the pages it serves; presence and poses reach the other realm
// nodes over NATS subjects per scene.
//
// It depends on nearly every other package and nothing but cmd imports it.
// Shutdown runs in the reverse order of start-up, and the embedded NATS
// server stops last, so that nothing acknowledged to a client is lost.
package realm
