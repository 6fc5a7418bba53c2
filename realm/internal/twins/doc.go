// Package twins is the realm's digital-twin HTTP API and console feed:
// the routes under /v1/twins and /v1/approvals, the reading of twins (each
// a ViewTwin decision of the twin's scene, audited), and the WebSocket
// feed that streams states, outcomes and approvals to the consoles of
// this node. The commands themselves are decided and carried out by its
// sub-package command, which speaks no HTTP; this package turns requests
// into its calls (taking a command's Idempotency-Key first, and replaying
// the first answer to a retry) and its answers and refusals into JSON and
// problem answers.
//
// It imports the shared plumbing realm/internal/edge and its own command
// package, nothing else of the realm. What it needs from elsewhere (the
// decider, the session's trust, the audit of a refusal, the session
// watcher of a feed) comes in Deps as small interfaces and funcs, which
// the composition root wires; the command service is bound when the realm
// starts (Bind), before it reports ready.
package twins
