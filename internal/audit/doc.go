// Package audit is the realm's tamper-evident record of decisions: every
// allow and every deny, with who asked, what for, on what, the reasons, the
// deciding policy ids and the signals used.
//
// Events go to the AUDIT stream, one hash chain per realm node (subject
// "audit.<node>"): each event carries the SHA-256 of the previous event's
// stored bytes and a gapless index, so a deleted, inserted or edited event
// breaks the chain and Verify names the first broken link. One chain per node
// rather than one global chain keeps the realm free of a global lock: nodes
// never contend to append, and each chain is still totally ordered.
//
// Appends are asynchronous so a decision never waits for the disk, but the
// queue is bounded: when it is full, Record blocks (back-pressure) until
// there is room or the caller's context ends, and an event that cannot be
// stored is logged and counted, never dropped silently.
package audit
