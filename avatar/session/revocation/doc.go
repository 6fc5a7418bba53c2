// Package revocation makes a session revocation take effect on every realm
// node at once, whatever state the store is in, and then makes it durable.
//
// A revocation is three steps (Broadcaster.Revoke):
//
//  1. This node denies the session (session.Manager.Deny): its requests
//     and live connections here are refused from then on.
//  2. It tells every other node over core NATS, which needs no JetStream
//     leader: a request on <prefix>.sessions.revoked carrying the
//     revocations, which each node denies and acknowledges on the reply
//     subject. Revoke waits until every node the Peers function lists as
//     live has acknowledged, or until its wait (Config.AckWait, and the
//     caller's deadline) runs out, and says how many were told.
//  3. It stores the revocation in the sessions bucket, waiting at most
//     Config.StoreWait; if that fails (the bucket is electing a leader,
//     say), a background attempt retries with back-off until the record is
//     stored, for as long as the Broadcaster runs. The denials outlive the
//     attempt: each node keeps one until the session would have expired.
//
// Whoever can publish on NATS could otherwise sign anyone out, or answer
// for a node that never heard. So both the notice and each acknowledgement
// carry a tag under the cluster's message key (the Authenticator, the
// realm's cluster message authentication): a notice that does not verify
// is dropped and reported, denying nothing, and an acknowledgement that
// does not verify (over this request's own reply subject) is not counted.
// Nothing a notice says can withdraw a denial; a notice replayed within
// the authenticator's window repeats a revocation that was made.
//
// A revocation is not lost with the node that made it: each node told of
// it stores it too, Config.RedriveAfter (5 s) after acknowledging it,
// retrying the same way (Config.Redrive, idempotent: a revocation stored
// already changes nothing). Should the node that made it stop before its
// store attempt succeeded, any node it told stores it.
//
// A node that misses a notice (it was disconnected, or started after it)
// learns the revocation when the store has it, through its revocation
// feed, as before.
package revocation
