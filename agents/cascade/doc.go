// Package cascade makes an agent revocation (a delegation, and with it
// everything derived from it; or every delegation an owner issued) take
// effect on every realm node and every twin gateway at once, whatever
// state the store is in, and then makes it durable.
//
// A revocation is three steps (Broadcaster.Revoke, RevokeOwner), as a
// session's (avatar/session/revocation):
//
//  1. This node denies it (agents.Revocations.Deny): its Guard refuses
//     every chain it stops, and the mirror's OnRevoke function tells this
//     node's twin gateways at once, in a signed revocation notice.
//  2. It tells every other node over core NATS, which needs no JetStream
//     leader: a request on <prefix>.agents.revoked carrying the
//     revocation, which each node denies (and tells its own gateways of)
//     and acknowledges on the reply subject. The call waits until every
//     node the Peers function lists as live has acknowledged, or until
//     its wait runs out, and says how many were told.
//  3. It stores the revocation in the agent-revocations bucket
//     (agents.Revocations.Store), waiting at most StoreWait; if that
//     fails, background attempts retry with back-off until it is stored.
//     Each node told of it stores it too, RedriveAfter later, should its
//     maker stop first. The bucket's change feed stays the source of
//     truth: a node that missed the notice learns it from there.
//
// Notices and acknowledgements carry a tag under the cluster's message key
// (internal/clustermsg), so a notice from anyone else is dropped and
// reported, revoking nothing; gateways may not publish on the subject at
// all (their NATS permissions). Nothing a notice says can lift a
// revocation: a replayed notice, within the tag's window, repeats a
// revocation that was made.
package cascade
