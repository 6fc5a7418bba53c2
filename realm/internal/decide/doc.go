// Package decide is where the realm decides and puts its decisions on
// record: the Cedar decision of a person's action (the avatar as the
// principal, the session's trust and passkey in the context) and of an
// agent's (its delegation first, through the agents guard, then the same
// policies with the agent as the principal and its chain on record), and
// the audit calls every part makes, each saying in its name whether it
// waits for the record (RecordAndWait, DecideAndWait) or only queues it
// (RecordQueued, AllowQueued, DenyQueued, Decide).
//
// Service satisfies the Decider and Auditor interfaces the other parts
// declare, so the composition root hands it to them as it is. API serves
// what a signed-in avatar or an agent may do in a scene now
// (GET /v1/scenes/{id}/access, each answer a real, audited decision) and
// where the realm sees it there (GET /v1/scenes/{id}/me).
//
// It imports the domains it decides over (policy, scenes, trust, agents),
// internal/audit and the shared plumbing realm/internal/edge, no other
// part of the realm.
package decide
