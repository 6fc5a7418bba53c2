// Package delegations is the realm's API for an avatar's delegations to
// AI agents: the owner asks for a delegation's digest, confirms it with a
// user-verified passkey step-up bound to that digest, and the node's key
// signs the root (agents.Draft.Sign); the owner lists, revokes (cascading
// to everything derived) and reinstates suspended agents. Only people
// call it: every route is wrapped by the edge's Authed, which refuses
// agents. See docs/agents.md.
package delegations
