// Package store is the only code in ZeroRealm that talks to JetStream for
// durable state. Keeping it in one small package keeps naming (one
// configurable prefix for every subject, stream and bucket), validation,
// timeouts and the mapping of server error codes to ErrConflict and
// ErrNotFound in one place, so the domain packages see a handful of
// primitives:
//
//   - per-subject optimistic concurrency: Stream.AppendIfLast appends only
//     if the subject's last sequence is the one the caller decided on;
//   - atomic multi-subject appends: Stream.AppendAtomic, all or none;
//   - idempotent retries: WithMsgID, with a read-back that recognises our
//     own write when a retry meets a stale expectation;
//   - projections: Stream.Follow replays a subject filter and keeps a read
//     model current, with Follower.WaitApplied for read-your-writes;
//   - key-value buckets with compare-and-set and watches, and
//     Bucket.Changes, a feed of changed keys for caches that says when it
//     may be missing changes (Lost) and when it hears them again (Resumed);
//   - sealing: buckets and streams declared Sealed authenticate every value
//     and message with the cluster's record key (Config.RecordKey, which
//     never enters NATS), and every read refuses, as absent, what does not
//     verify or is a genuine record replayed out of its place (seal.go).
//
// Appends are plain NATS requests with JetStream's expectation headers,
// and their acknowledgements are read without encoding/json when they
// have the server's usual shape (publish.go): on the path of every asset
// transfer the jetstream client's generic publish cost more than the rest
// of the store's work.
//
// The same code runs against an embedded single node and against a
// cluster: the replica count defaults from what the connection sees.
//
// # Durability
//
// An acknowledged append survives a SIGKILL of the server process with the
// server's default sync settings. On a single replica the file store writes
// each message to its block file (flush in place) before the ack, so the
// data is in the operating system's page cache, which outlives the process;
// the periodic fsync (sync_interval, 2 minutes by default) only matters when
// the machine itself loses power. Replicated streams acknowledge once a
// quorum has the message, so a dead node loses nothing either. Deployments
// that must survive power loss on a single node set sync_always in the
// server's JetStream configuration, at a large cost in append rate.
package store
