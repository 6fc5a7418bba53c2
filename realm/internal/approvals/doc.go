// Package approvals serves the owner's approval queue of agents' actions
// (agents/approval) over HTTP: the owner lists the actions waiting for
// them and approves one with a passkey step-up bound to its digest, or
// rejects it; the agent that asked polls its action and may withdraw it.
// It also says how a waiting action travels on the realm WebSocket.
package approvals
