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
// Events are stored in blocks, one event per line, by one writer per node
// that commits in groups: whatever queued while the previous append was in
// flight goes out as the next block, so a busy node makes one append per
// round trip rather than one per decision. The chain links events, across
// blocks.
//
// Record is asynchronous so a decision never waits for the disk, but the
// queue is bounded: when it is full, Record blocks (back-pressure) until
// there is room or the caller's context ends, and an event that cannot be
// stored is logged and counted, never dropped silently. Commit waits until
// the event's block is stored, for decisions whose effect must not happen
// unless the decision is on record.
//
// A View follows the stream on each node and answers queries (Query, parsed
// from URL parameters by ParseQuery) a page at a time. A page's cursor is an
// event's place in the stream (block sequence and line), not an offset from
// the newest event, so it means the same on every node and does not move
// while new events arrive.
package audit
