package apidoc

import "github.com/zerorealm/zerorealm/realm/internal/edge"

// Agents authenticate with DPoP (docs/agents.md). Routes an agent may call
// are listed here, apart from the operations' list, because most routes
// are people's only: an agent there is refused with people-only.

// agentAccess says which documented operations ("METHOD /path") an agent
// may call: agentOnly, or agentToo alongside a person.
var agentAccess = map[string]agentMode{
	"GET /v1/agents/me":          agentOnly,
	"GET /v1/scenes/{id}/access": agentToo,
}

type agentMode int

const (
	agentToo agentMode = iota + 1
	agentOnly
)

const agentUnauthenticated = "the agent is not authenticated, with WWW-Authenticate: DPoP and the reason: use-dpop-nonce (retry with the DPoP-Nonce header's value), " +
	"invalid-dpop-proof (a proof by another key than the delegation's, replayed, stale or for another request), delegation-expired, delegation-revoked, invalid-delegation"

// agentSecurity adjusts an operation's security and refusals for agents.
func agentSecurity(key string, o, responses map[string]any) {
	mode, ok := agentAccess[key]
	if !ok {
		return
	}
	dpop := map[string]any{"dpop": []string{}}
	switch mode {
	case agentOnly:
		o["security"] = []any{dpop}
		responses["401"] = problemResponse("no DPoP credentials, or " + agentUnauthenticated)
		responses["403"] = problemResponse("the agent is suspended (" + edge.ProblemBase + edge.TypeAgentSuspended + ")")
	case agentToo:
		o["security"] = append(o["security"].([]any), dpop)
		responses["401"] = problemResponse("no session, or one that is unknown, expired or revoked (WWW-Authenticate: Bearer); for an agent, " + agentUnauthenticated)
	}
}

// dpopScheme is the security scheme of agents: OpenAPI 3.0 has no DPoP
// type, so it is described as the header it is.
var dpopScheme = map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
	"description": "Authorization: DPoP <delegation token zrd1~...> with a DPoP header carrying an RFC 9449 proof (EdDSA) by the key the delegation names; see docs/agents.md"}

func agentSchemas(s map[string]any) {
	s["AgentMe"] = obj(map[string]any{
		"id": described(strT, "ag_ and 32 hex digits"), "owner": described(strT, "the avatar the agent acts for"),
		"delegation": described(strT, "the leaf delegation's id"),
		"chain":      described(strT, "who authorized it, through which agents: av_... > ag_... (dg_...) > ..."),
		"agents":     arrayOf(strT), "delegations": arrayOf(strT),
		"actions":   arrayOf(strT),
		"resources": arrayOf(obj(map[string]any{"type": described(strT, "Scene, Twin, Actuator or Collection"), "id": strT}, "type", "id")),
		"limits": obj(map[string]any{"transfer_value": intT, "daily_value": intT, "auto_approve_value": intT, "commands_per_minute": intT,
			"max_risk": described(strT, "low, medium or high")}),
		"expires": timeT,
		"trust":   obj(map[string]any{"state": strT, "score": numT}, "state", "score"),
	}, "id", "owner", "delegation", "chain", "agents", "delegations", "actions", "resources", "limits", "expires", "trust")
	access := s["SceneAccess"].(map[string]any)
	props := access["properties"].(map[string]any)
	props["agent"] = described(strT, "for an agent: its id (its trust is then the agent's own)")
	props["chain"] = described(strT, "for an agent: its chain from its owner")
}
