// Package market is the realm's marketplace: the asset ledger as this
// node runs it (the scene collections it serves, the receipts and
// checkpoints it countersigns with the node's key, the signer addresses
// it publishes for every node), the authorization of each transfer leg by
// the scene's policy, the owner signatures the realm applies for
// custodial addresses after a step-up, the idempotency of transfers and
// trades, and the HTTP API under /v1/assets, /v1/receipts and
// /v1/checkpoints.
//
// It holds no pointer back to the realm. What it needs from the rest of
// the node comes through Deps: policy decisions stored in the audit log
// before they are acted on (Decider), trust assessments (TrustReader),
// passkey step-ups (StepUps), queued audit records (Auditor), the node
// key ring's key list (KeyLister), and plain values. It imports the
// domain packages, the store and the shared HTTP plumbing (edge), never
// another part of the realm.
package market
