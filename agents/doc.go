// Package agents makes AI agents principals of their own: an agent acts for
// one avatar (its owner) within a delegation, and proves on every request
// that it holds the key the delegation names.
//
// A delegation is a chain of signed blocks (grant.go, token.go, chain.go).
// The root block is issued by a realm node's key after the owner confirmed
// its digest with a passkey step-up; every further block is signed by the
// holder of the block before it and names the next holder's Ed25519 key, so
// an agent derives a delegation for a sub-agent offline. A block can only
// narrow what the block before it grants: the verifier checks the whole
// chain and refuses any widening with its reason.
//
// Each request carries an RFC 9449 DPoP proof (pop.go) signed with the
// key of the chain's last holder and bound to the token, the method and the
// URL, so a stolen token without the key is useless and a proof is spent
// once.
//
// Limits (value per transfer, sum per day, commands per minute, highest
// risk, auto-approval) are accounted in a JetStream bucket with
// compare-and-set (usage.go), so two realm nodes never both spend the last
// of a budget; the agent's behaviour feeds a trust score of its own
// (behaviour.go); and revoking a delegation revokes every delegation
// derived from it (revocation.go).
//
// The package decides and accounts; it serves nothing. The realm calls a
// few methods per request (Guard) and passes the outcome, with the
// context.agent record, to the same Cedar decision a person's action gets.
// docs/agents.md has the formats, the rules and the threat model.
package agents
