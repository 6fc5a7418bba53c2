// Package delegations is the realm's API for an avatar's delegations to
// AI agents: the owner asks for a delegation's digest, confirms it with a
// user-verified passkey step-up bound to that digest, and the node's key
// signs the root (agents.Draft.Sign); the owner lists, revokes (cascading
// to everything derived) and reinstates suspended agents. People call
// those routes (the edge's Authed refuses agents); an agent calls only
// GET /v1/agents/me, what the realm sees of it. It also keeps the keys
// whose roots this node honours (Roots) and stops every agent of an
// owner (StopOwnersAgents). See docs/agents.md.
package delegations
