// Package realm is ZeroRealm's world server as a composition root: it owns
// no concern of its own, but makes the parts under realm/internal, gives
// each what its Deps declare, registers their routes, starts them in order
// (the node's foundation in realm/internal/node: data directory, NATS,
// store, keys, audit log; then scenes and twins, identity, the
// marketplace, the live and XR edges, decisions, agents, and the
// background loops) and stops them in reverse, so that the embedded NATS
// server stops last and nothing acknowledged to a client is lost.
//
// Config is the one place a user configures a node. The layout of the
// parts, what each owns and may import, is drawn in docs/architecture.md
// and held by internal/archtest. It depends on nearly every other package
// and nothing but cmd imports it.
package realm
