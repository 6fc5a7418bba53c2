package apidoc

import "github.com/zerorealm/zerorealm/realm/internal/edge"

// Agents authenticate with DPoP (docs/agents.md). Routes an agent may call
// are listed here, apart from the operations' list, because most routes
// are people's only: an agent there is refused with people-only.

// agentAccess says which documented operations ("METHOD /path") an agent
// may call: agentOnly, or agentToo alongside a person.
var agentAccess = map[string]agentMode{
	"GET /v1/agents/me":                                   agentOnly,
	"GET /v1/realm":                                       agentToo,
	"POST /v1/mcp":                                        agentOnly,
	"GET /v1/scenes/{id}/access":                          agentToo,
	"POST /v1/assets/transfers":                           agentToo,
	"GET /v1/agents/approvals/{id}":                       agentToo,
	"DELETE /v1/agents/approvals/{id}":                    agentOnly,
	"GET /v1/twins":                                       agentToo,
	"GET /v1/twins/{twin}":                                agentToo,
	"POST /v1/twins/{twin}/actuators/{actuator}/commands": agentToo,
}

// agentAnswers are what an agent may be answered beyond a person, by
// operation.
var agentAnswers = map[string]func(responses map[string]any){
	"POST /v1/twins/{twin}/actuators/{actuator}/commands": func(responses map[string]any) {
		responses["202"] = map[string]any{
			"description": "a critical command waits for a second operator (pending_approval); an agent's high-risk command waits for its owner (pending_owner_approval): poll the action at Location",
			"headers":     map[string]any{"Location": map[string]any{"description": "an agent's command: /v1/agents/approvals/{id}", "schema": strT}},
			"content":     map[string]any{"application/json": map[string]any{"schema": ref("CommandAnswer")}},
		}
		responses["403"] = problemResponse("refused: a policy decision, a missing step-up or a zone mismatch; for an agent, its delegation (out-of-scope, over-limit: a riskier command than max_risk, critical never; rate-limited) or its suspension (" +
			edge.ProblemBase + edge.TypeAgentSuspended + "); the detail says which and why")
	},
	"POST /v1/assets/transfers": func(responses map[string]any) {
		responses["202"] = map[string]any{
			"description": "an agent's transfer above its delegation's auto-approval value waits for its owner: poll the action at Location",
			"headers":     map[string]any{"Location": map[string]any{"description": "/v1/agents/approvals/{id}", "schema": strT}},
			"content":     map[string]any{"application/json": map[string]any{"schema": ref("AgentApproval")}},
		}
		responses["403"] = problemResponse("refused: a policy decision or a missing step-up; for an agent, its delegation (" + edge.ProblemBase + edge.TypeAgentForbidden +
			": out-of-scope, over-limit) or its suspension (" + edge.ProblemBase + edge.TypeAgentSuspended + "); the detail says which and why")
		responses["429"] = problemResponse("too many of the owner's actions wait for approval already (" + edge.ProblemBase + "approval-queue-full)")
	},
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
	if add, ok := agentAnswers[key]; ok {
		add(responses)
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
	resource := obj(map[string]any{"type": described(strT, "Scene, Twin (and all its actuators), Actuator (twin/actuator) or Collection"), "id": strT}, "type", "id")
	limits := obj(map[string]any{
		"transfer_value":      described(intT, "the most one transfer may move, base units; 0 forbids transfers"),
		"daily_value":         described(intT, "the most all transfers may move in one UTC day"),
		"auto_approve_value":  described(intT, "a transfer above it waits for the owner's approval; at most transfer_value"),
		"commands_per_minute": described(intT, "actuator commands in any UTC minute, at most 600"),
		"max_risk":            described(strT, "low, medium or high (critical is never delegated)"),
	})
	actions := described(arrayOf(strT), "Cedar action ids: JoinScene, EnterZone, TransferAsset, CommandActuator, ViewTwin")
	s["DelegationDigestRequest"] = obj(map[string]any{
		"agent_key": described(strT, "the agent's Ed25519 public key, base64url without padding"),
		"actions":   actions, "resources": arrayOf(resource), "limits": limits,
		"expires_in": described(intT, "seconds, 1 to 86400"),
	}, "agent_key", "actions", "resources", "limits", "expires_in")
	grant := obj(map[string]any{
		"v": intT, "id": described(strT, "dg_ and 32 hex digits"), "iss": described(strT, "EIP-55 address of the node key that will sign the root"),
		"owner": strT, "agent": described(strT, "the agent's Ed25519 public key, base64url"), "actions": actions,
		"resources": arrayOf(resource), "limits": limits, "iat": timeT, "exp": timeT,
	}, "v", "id", "iss", "owner", "agent", "actions", "resources", "limits", "iat", "exp")
	s["DelegationGrant"] = grant
	s["DelegationDigest"] = obj(map[string]any{
		"grant": described(ref("DelegationGrant"), "send it back unchanged to issue the delegation, within 10 minutes, to the same node"),
		"agent": described(strT, "the agent's id, ag_ and 32 hex digits"), "action_digest": hashT,
	}, "grant", "agent", "action_digest")
	s["DelegationIssueRequest"] = obj(map[string]any{"grant": ref("DelegationGrant")}, "grant")
	view := obj(map[string]any{
		"id": strT, "owner": strT, "agent_key": strT, "agent": strT, "actions": actions, "resources": arrayOf(resource), "limits": limits,
		"issuer": addrT, "issued": timeT, "expires": timeT, "revoked": timeT,
		"state":            described(strT, "active, expired or revoked"),
		"reinstate_digest": described(hashT, "the action digest of the step-up that lifts the agent's suspension"),
	}, "id", "owner", "agent_key", "agent", "actions", "resources", "limits", "issuer", "issued", "expires", "state", "reinstate_digest")
	s["Delegation"] = view
	s["DelegationIssued"] = obj(map[string]any{
		"token":      described(strT, "the delegation token, zrd1~...: the agent sends it as Authorization: DPoP with a proof by its key"),
		"delegation": ref("Delegation"),
	}, "token", "delegation")
	s["Delegations"] = obj(map[string]any{"delegations": arrayOf(ref("Delegation"))}, "delegations")
	s["AgentApproval"] = agentApprovalSchema()
	s["AgentApprovals"] = obj(map[string]any{"approvals": arrayOf(ref("AgentApproval"))}, "approvals")
	s["MCPMessage"] = freeForm("a JSON-RPC 2.0 message of the Model Context Protocol; 202 with no body answers a notification")
	access := s["SceneAccess"].(map[string]any)
	props := access["properties"].(map[string]any)
	props["agent"] = described(strT, "for an agent: its id (its trust is then the agent's own)")
	props["chain"] = described(strT, "for an agent: its chain from its owner")
}

// agentApprovalSchema is an action in the owner's approval queue
// (approval.View).
func agentApprovalSchema() map[string]any {
	problem := obj(map[string]any{"status": intT, "type": strT, "detail": strT}, "status", "type", "detail")
	return obj(map[string]any{
		"id":   described(strT, "pa_ and 32 hex digits"),
		"kind": described(strT, "what the action is: transfer (a market transfer), command (a twin command)"),
		"state": map[string]any{"type": "string", "enum": []string{"pending", "approved", "done", "failed", "rejected", "expired", "cancelled"},
			"description": "pending: waiting for the owner; approved: a node runs it now; done: it ran, result holds its answer; failed: decided again when it ran and refused, problem says why; rejected by the owner; cancelled by the agent; expired without a decision"},
		"owner": strT, "agent": strT, "delegation": described(strT, "the leaf delegation it was asked under"),
		"chain": described(strT, "who authorized it, through which agents: av_... > ag_... (dg_...) > ..."),
		"action": obj(map[string]any{"name": described(strT, "a Cedar action id"), "resource": obj(map[string]any{"type": strT, "id": strT}, "type", "id"),
			"value": described(uintT, "what a transfer moves, base units (1 for a unique item)"), "risk": strT}, "name", "resource", "value"),
		"summary":       strT,
		"action_digest": described(hashT, "what the owner's step-up must be bound to before approving"),
		"created":       timeT, "expires": timeT, "decided": timeT,
		"decided_by": described(strT, "the owner (approved, rejected) or the agent (cancelled)"),
		"result":     freeForm("when done: the action's answer (a transfer's: the TransferAnswer, with its receipt)"),
		"problem":    described(problem, "when failed: the problem the action was refused with"),
	}, "id", "kind", "state", "owner", "agent", "delegation", "chain", "action", "summary", "action_digest", "created", "expires")
}
