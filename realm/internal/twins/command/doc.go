// Package command is the realm's digital-twin command service: the twin
// registry built from the scenes, the checks before policy (envelope,
// rates), the operator's step-up, the policy decision and its audit
// record, the grant signed with the node's key and delivered to the twin's
// gateway, the gateway's signed acknowledgement, the queue of critical
// commands waiting for a second operator, and the store of the commands'
// Idempotency-Keys (ClaimCommand, CompleteCommand, ReleaseCommand), which
// the API claims and answers from, with the settling of a command whose
// node lost its answer from the gateway's journal (resolve.go).
// It also runs the revocation feed to gateways and, on an embedded
// server, a simulated gateway for every twin that has no enrolled one.
//
// It speaks no HTTP: internal/archtest keeps net/http and the realm's
// HTTP plumbing out of it, so the same service can sit behind any
// transport. Its refusals are Errors of a Kind, which the API in
// realm/internal/twins turns into problem answers.
//
// It owns no state of the realm's. What it needs from elsewhere comes in
// Deps as small interfaces (Decider, Auditor, StepUps, TrustReader,
// Locator, SessionReader, AvatarReader, Events) and plain values (the NATS
// connection, the store, the node's signing key), which the composition
// root wires.
package command
