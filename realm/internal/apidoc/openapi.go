package apidoc

import (
	"net/http"
	"strings"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// apiOperation describes one /v1 route for the OpenAPI document. The list
// is checked against the routes the realm registers (openapi_test.go), so
// a new route without an entry fails the tests.
type apiOperation struct {
	method, path string
	id           string // operationId: what generated clients name the call
	tag, summary string
	authed       bool
	request      string // component schema of the body, "" for none
	response     string // component schema of the success answer, "" for no body (204, 101)
	okStatus     string // success statuses, space separated
	idempotency  Idempotency
}

// Idempotency says whether an operation reads the Idempotency-Key header.
type Idempotency int

const (
	NoIdempotencyKey Idempotency = iota
	IdempotencyKeyOptional
	IdempotencyKeyRequired
)

var apiOperations = []apiOperation{
	{"GET", "/livez", "getLiveness", "health", "Liveness: 200 while the process serves HTTP; restart the node only when this fails", false, "", "Liveness", "200", 0},
	{"GET", "/readyz", "getReadiness", "health", "Readiness: 200 when this node can decide and write now (NATS connected, JetStream answering, every stream and bucket it writes has a leader, the embedded store's disk above its free-space minimum); 503 with the reason and the checks otherwise. Probed in the background once a second", false, "", "Readiness", "200", 0},
	{"GET", "/healthz", "getHealth", "health", "The readiness verdict of /readyz with the node's version, scenes and replica count; 503 with the reason when not ready", false, "", "Health", "200", 0},
	{"GET", "/v1/version", "getVersion", "realm", "Build version", false, "", "Version", "200", 0},
	{"GET", "/v1/nodes", "listNodes", "realm", "Live realm nodes", false, "", "Nodes", "200", 0},
	{"GET", "/v1/audit", "listAuditEvents", "audit", "Decisions, newest first, a page at a time (filters action, decision, actor, resource, node, since, until; paging limit, before). Every event for the admin or auditor role (Config.AuditRoles), only the caller's own otherwise", true, "", "AuditPage", "200", 0},
	{"GET", "/v1/audit/verify", "verifyAudit", "audit", "Verify every node's audit chain as a transparency log: hash links, and the chain against the signed checkpoints kept in this node's data directory, in AUDITCP and by its witness. Public: counts, heads, roots, checkpoints and findings, no event", false, "", "AuditVerify", "200", 0},
	{"GET", "/v1/audit/checkpoints", "listAuditCheckpoints", "audit", "The newest signed checkpoint (C2SP tlog-checkpoint in a signed note) of every node's chain, or of ?node=, with the cosignatures (C2SP tlog-cosignature) of its witnesses; for one node with Accept: text/plain, the signed note itself", false, "", "AuditCheckpoints", "200", 0},
	{"GET", "/v1/audit/proof/inclusion", "getAuditInclusionProof", "audit", "RFC 6962 inclusion proof of a node's event (index from 1) in its tree of size events; hashes base64", false, "", "AuditProof", "200", 0},
	{"GET", "/v1/audit/proof/consistency", "getAuditConsistencyProof", "audit", "RFC 6962 consistency proof between a node's trees of from and to events; hashes base64", false, "", "AuditProof", "200", 0},
	{"GET", "/v1/scenes", "listScenes", "scenes", "List scenes", false, "", "Scenes", "200", 0},
	{"GET", "/v1/scenes/{id}", "getScene", "scenes", "One scene", false, "", "Scene", "200", 0},
	{"GET", "/v1/scenes/{id}/access", "getSceneAccess", "scenes", "What the scene's policies allow the avatar now; for an agent, what its delegation and the policies allow it (denials out of its delegation are not attempts)", true, "", "SceneAccess", "200", 0},
	{"GET", "/v1/agents/me", "getAgentMe", "agents", "The calling agent as the realm sees it: its chain from its owner, its delegation's scope, limits and expiry, its trust (agents only, DPoP)", true, "", "AgentMe", "200", 0},
	{"POST", "/v1/agents/delegations/digest", "getDelegationDigest", "agents", "Prepare a delegation to an agent (its Ed25519 key, actions, resources, limits, expires_in at most 24 h) and answer its grant and the action digest its owner's user-verified step-up must be bound to; nothing is stored", true, "DelegationDigestRequest", "DelegationDigest", "200", 0},
	{"POST", "/v1/agents/delegations", "issueDelegation", "agents", "Issue the delegation whose grant the digest call returned, after the owner's step-up bound to its digest: the realm node's key signs the root; answers the token (zrd1~...)", true, "DelegationIssueRequest", "DelegationIssued", "201", 0},
	{"GET", "/v1/agents/delegations", "listDelegations", "agents", "The owner's delegations, newest first, with their state", true, "", "Delegations", "200", 0},
	{"DELETE", "/v1/agents/delegations/{id}", "revokeDelegation", "agents", "Revoke one of the owner's delegations on every node and twin gateway, and everything derived from it", true, "", "DelegationRevoked", "200", 0},
	{"POST", "/v1/agents/{id}/reinstate", "reinstateAgent", "agents", "Lift the suspension of an agent the owner delegated to, after a step-up bound to its reinstate_digest", true, "", "", "204", 0},
	{"GET", "/v1/agents/approvals", "listAgentApprovals", "agents", "The actions the owner's agents asked for that wait for the owner's approval, and those decided in the last day, newest first", true, "", "AgentApprovals", "200", 0},
	{"GET", "/v1/agents/approvals/{id}", "getAgentApproval", "agents", "One waiting action: for its owner, or for the agent that asked for it, which polls it here (Location of its 202) until it is done (with its result), failed, rejected, cancelled or expired", true, "", "AgentApproval", "200", 0},
	{"POST", "/v1/agents/approvals/{id}/approve", "approveAgentAction", "agents", "Approve a waiting action after the owner's user-verified step-up bound to its action_digest: it runs once, on whichever node wins, decided again as the agent's; answers done with its result, or failed with the problem", true, "", "AgentApproval", "200", 0},
	{"POST", "/v1/agents/approvals/{id}/reject", "rejectAgentAction", "agents", "Reject a waiting action", true, "", "AgentApproval", "200", 0},
	{"DELETE", "/v1/agents/approvals/{id}", "cancelAgentAction", "agents", "The agent withdraws one of its own waiting actions (agents only, DPoP)", true, "", "AgentApproval", "200", 0},
	{"POST", "/v1/mcp", "mcp", "agents", "The Model Context Protocol (Streamable HTTP, stateless, JSON answers) for agents: initialize, tools/list, tools/call of list_scenes, scene_access, my_audit_trail; every request authenticated with DPoP, every tool that acts authorized per action. Protected resource metadata (RFC 9728) at /.well-known/oauth-protected-resource", true, "MCPMessage", "MCPMessage", "200 202", 0},
	{"GET", "/v1/scenes/{id}/me", "getSceneStanding", "scenes", "Where the realm sees the avatar in the scene: the zone its twin commands are decided with", true, "", "Standing", "200", 0},
	{"POST", "/v1/webauthn/register/begin", "beginRegistration", "webauthn", "Begin a passkey registration: a new avatar, or (signed in, after a step-up bound to add_passkey_action_digest) a passkey added to the avatar", false, "RegisterBeginRequest", "RegistrationBegin", "200", 0},
	{"POST", "/v1/webauthn/register/finish", "finishRegistration", "webauthn", "Finish a passkey registration; returns a session (a passkey added to a signed-in avatar returns the avatar only)", false, "RegisterFinishRequest", "SignedIn", "200", 0},
	{"POST", "/v1/webauthn/login/begin", "beginLogin", "webauthn", "Begin a passkey sign-in", false, "LoginBeginRequest", "AssertionBegin", "200", 0},
	{"POST", "/v1/webauthn/login/finish", "finishLogin", "webauthn", "Finish a passkey sign-in; returns a session", false, "LoginFinishRequest", "SignedIn", "200", 0},
	{"POST", "/v1/webauthn/stepup/begin", "beginStepUp", "webauthn", "Begin a step-up bound to an action digest", true, "StepUpBeginRequest", "AssertionBegin", "200", 0},
	{"POST", "/v1/webauthn/stepup/finish", "finishStepUp", "webauthn", "Finish a step-up", true, "StepUpFinishRequest", "StepUpVerified", "200", 0},
	{"GET", "/v1/avatars/me", "getMe", "avatars", "The signed-in avatar", true, "", "Me", "200", 0},
	{"DELETE", "/v1/avatars/me/passkeys/{id}", "deletePasskey", "avatars", "Delete a passkey (needs a step-up)", true, "", "", "204", 0},
	{"GET", "/v1/avatars/me/template", "getTemplate", "avatars", "The avatar's biometric template status", true, "", "Template", "200", 0},
	{"DELETE", "/v1/avatars/me/template", "deleteTemplate", "avatars", "Delete the avatar's biometric template (needs a step-up)", true, "", "", "204", 0},
	{"GET", "/v1/avatars", "listAvatars", "avatars", "Every avatar with its roles, by name (after, limit; admin role)", true, "", "AvatarPage", "200", 0},
	{"POST", "/v1/avatars/{id}/roles/digest", "getRolesDigest", "avatars", "The action digest to step up for before a role change (admin role)", true, "RolesRequest", "RolesDigest", "200", 0},
	{"PUT", "/v1/avatars/{id}/roles", "setRoles", "avatars", "Replace an avatar's roles (admin role, step-up bound to the change)", true, "RolesRequest", "RolesChanged", "200", 0},
	{"GET", "/v1/sessions", "listSessions", "sessions", "The avatar's sessions", true, "", "Sessions", "200", 0},
	{"POST", "/v1/sessions/logout", "logout", "sessions", "End this session", true, "", "Revoked", "200", 0},
	{"POST", "/v1/sessions/logout-all", "logoutAll", "sessions", "End every session of the avatar, and revoke every delegation it issued to agents", true, "", "Revoked", "200", 0},
	{"DELETE", "/v1/sessions/{id}", "revokeSession", "sessions", "Revoke one session", true, "", "", "204", 0},
	{"GET", "/v1/realm", "connectRealm", "realm", "The realm WebSocket (upgrade); its messages are described by /v1/asyncapi.json", true, "", "", "101", 0},
	{"GET", "/v1/twins", "listTwins", "twins", "The twins the avatar may view (ViewTwin, decided by each twin's scene policy; 403 when none)", true, "", "Twins", "200", 0},
	{"GET", "/v1/twins/feed", "connectTwinFeed", "twins", "Twin console feed (WebSocket upgrade) about the twins the avatar may view (ViewTwin, decided at connect; 403 when none)", true, "", "", "101", 0},
	{"GET", "/v1/twins/{twin}", "getTwin", "twins", "One twin, if the avatar may view it (ViewTwin)", true, "", "Twin", "200", 0},
	{"POST", "/v1/twins/{twin}/actuators/{actuator}/commands", "commandActuator", "twins", "Command an actuator, from the zone the realm sees the operator in; 202 when a critical command waits for approval", true, "CommandRequest", "CommandAnswer", "200 202", IdempotencyKeyRequired},
	{"POST", "/v1/twins/{twin}/actuators/{actuator}/commands/digest", "getCommandDigest", "twins", "Digest of a command, for its step-up", true, "CommandRequest", "CommandDigest", "200", IdempotencyKeyRequired},
	{"GET", "/v1/approvals", "listApprovals", "twins", "Pending command approvals of the twins the avatar may view (ViewTwin)", true, "", "Approvals", "200", 0},
	{"GET", "/v1/approvals/{id}", "getApproval", "twins", "One approval, if the avatar may view its twin (ViewTwin)", true, "", "ApprovalAnswer", "200", 0},
	{"POST", "/v1/approvals/{id}/approve", "approveCommand", "twins", "Approve a command", true, "", "ApprovalAnswer", "200", 0},
	{"POST", "/v1/approvals/{id}/reject", "rejectCommand", "twins", "Reject a command", true, "", "ApprovalAnswer", "200", 0},

	{"POST", "/v1/biometrics/background", "shareBackground", "biometrics", "This node's biometric background statistics for a reader realm: a C2SP signed note asking for them, answered by one carrying them (docs/biometrics.md, \"Background statistics from other realms\"). Authenticated by the request's signature, by a key the realm names a reader (--background-readers)", false, "", "", "200", 0},

	{"GET", "/v1/openapi.json", "getOpenAPI", "realm", "This document", false, "", "OpenAPIDocument", "200", 0},
	{"GET", "/v1/asyncapi.json", "getAsyncAPI", "realm", "The AsyncAPI 3 description of the realm WebSocket", false, "", "AsyncAPIDocument", "200", 0},
	{"GET", "/v1/assets/domain", "getAssetDomain", "market", "The EIP-712 domain, the node's receipt signer and the treasury", false, "", "AssetDomain", "200", 0},
	{"GET", "/v1/assets/signers", "listReceiptSigners", "market", "Every realm node's receipt signers, current and retired, with since/until (a convenience: pin keys offline with zerorealm keys export-public)", false, "", "Signers", "200", 0},
	{"GET", "/v1/assets/collections", "listCollections", "market", "Every scene's collections", false, "", "Collections", "200", 0},
	{"GET", "/v1/assets/collections/{collection}", "getCollection", "market", "A collection's items or balances (after, limit)", false, "", "CollectionPage", "200", 0},
	{"GET", "/v1/assets/items/{collection}/{item}", "getItem", "market", "One unique item with its history", false, "", "Asset", "200", 0},
	{"GET", "/v1/assets/owners/{address}", "getOwner", "market", "An owner's items and balances (after, limit), and its next nonce", false, "", "OwnerPage", "200", 0},
	{"GET", "/v1/assets/wallet", "getWallet", "market", "The avatar's linked wallets and custodial address", true, "", "Wallet", "200", 0},
	{"POST", "/v1/assets/wallet/link/payload", "getLinkPayload", "market", "The LinkWallet typed data for a wallet to sign", true, "LinkRequest", "Payload", "200", 0},
	{"POST", "/v1/assets/wallet/link", "linkWallet", "market", "Link a wallet with its LinkWallet signature", true, "LinkRequest", "Wallet", "200", 0},
	{"POST", "/v1/assets/wallet/custodial", "createCustodial", "market", "Create (or return) the avatar's custodial address", true, "", "Wallet", "200", 0},
	{"POST", "/v1/assets/intents/transfer", "getTransferPayload", "market", "The Transfer typed data to sign (eth_signTypedData_v4)", false, "TransferRequest", "Payload", "200", 0},
	{"POST", "/v1/assets/intents/trade", "getTradePayload", "market", "The Trade typed data both owners sign", false, "TradeRequest", "Payload", "200", 0},
	{"POST", "/v1/assets/intents/cancel", "getCancelPayload", "market", "The CancelIntents typed data", false, "CancelRequest", "Payload", "200", 0},
	{"POST", "/v1/assets/transfers", "applyTransfer", "market", "Apply a transfer; an intent already applied (with or without the first Idempotency-Key) answers 200 with its receipt, the first answer's bytes", true, "TransferRequest", "TransferAnswer", "201 200", IdempotencyKeyOptional},
	{"POST", "/v1/assets/trades", "applyTrade", "market", "Apply both legs of a trade or neither; a trade already applied (with or without the first Idempotency-Key) answers 200 with its receipt, the first answer's bytes", true, "TradeRequest", "TransferAnswer", "201 200", IdempotencyKeyOptional},
	{"POST", "/v1/assets/cancel", "cancelIntents", "market", "Raise an owner's nonce floor, cancelling lower nonces", true, "CancelRequest", "NonceFloor", "200", 0},
	{"POST", "/v1/assets/mint", "mint", "market", "Mint (admin role)", true, "MintRequest", "Sequence", "201", 0},
	{"GET", "/v1/receipts", "listReceipts", "market", "A receipt chain (chain, from, limit)", false, "", "ReceiptChain", "200", 0},
	{"GET", "/v1/receipts/{digest}", "getReceipt", "market", "The receipt of an intent (by intent or receipt digest)", false, "", "Receipt", "200", 0},
	{"GET", "/v1/receipts/{digest}/proof", "getReceiptProof", "market", "The receipt with its inclusion proof in a signed checkpoint", false, "", "Receipt", "200", 0},
	{"GET", "/v1/checkpoints", "listCheckpoints", "market", "A chain's signed checkpoints (chain)", false, "", "Checkpoints", "200", 0},
}

// apiQueryParams are the query parameters of the operations that take
// some, by "METHOD path".
func apiQueryParams(f Facts) map[string][]any {
	return map[string][]any{
		"GET /v1/audit":                           auditQueryParams(),
		"GET /v1/audit/verify":                    {auditNodeParam(false)},
		"GET /v1/audit/checkpoints":               {auditNodeParam(false)},
		"GET /v1/audit/proof/inclusion":           {auditNodeParam(true), countParam("index", "the event's index in its chain (from 1)"), countParam("size", "the tree size, e.g. a checkpoint's")},
		"GET /v1/audit/proof/consistency":         {auditNodeParam(true), countParam("from", "the older tree size"), countParam("to", "the newer tree size")},
		"GET /v1/avatars":                         pageQueryParams(f.AvatarPageDefault, f.AvatarPageMax),
		"GET /v1/assets/collections/{collection}": pageQueryParams(100, 500),
		"GET /v1/assets/owners/{address}":         pageQueryParams(100, 500),
		"GET /v1/receipts": {chainParam("the receipt chain (a node's name); this node's by default"),
			map[string]any{"name": "from", "in": "query", "required": false, "description": "the first index", "schema": map[string]any{"type": "integer", "minimum": 0, "default": 0}},
			pageQueryParams(100, 500)[1]},
		"GET /v1/checkpoints": {chainParam("the receipt chain (a node's name); this node's by default")},
	}
}

// apiLimited are the operations a limit may refuse with 429, by
// "METHOD path", with the limit.
var apiLimited = map[string]string{
	"POST /v1/biometrics/background":    "a reader asking more often than once every 10 s after a burst of 6, or a client address more than once a second after a burst of 20",
	"POST /v1/webauthn/register/begin":  "too many ceremonies from this client address, or too many pending on this node",
	"POST /v1/webauthn/register/finish": "too many ceremonies from this client address",
	"POST /v1/webauthn/login/begin":     "too many ceremonies from this client address, or too many pending on this node",
	"POST /v1/webauthn/login/finish":    "too many ceremonies from this client address, or the avatar has too many sessions",
	"POST /v1/webauthn/stepup/begin":    "too many ceremonies from this client address, or too many pending on this node",
	"POST /v1/webauthn/stepup/finish":   "too many ceremonies from this client address",
	"GET /v1/realm":                     "the avatar holds too many live connections on this node",
	"GET /v1/audit/verify":              "too many verifications from this client address",
	"GET /v1/twins/feed":                "the avatar holds too many twin feeds on this node",
}

func problemResponse(description string) map[string]any {
	return map[string]any{"description": description, "content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

var (
	strT  = map[string]any{"type": "string"}
	uintT = map[string]any{"type": "string", "pattern": "^(0|[1-9][0-9]*)$", "description": "unsigned integer as a decimal string (a JSON number is accepted too)"}
	addrT = map[string]any{"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "description": "EIP-55 address"}
	hashT = map[string]any{"type": "string", "pattern": "^0x[0-9a-f]{64}$"}
	sigT  = map[string]any{"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$", "description": "65 bytes r||s||v, v 27 or 28, low s"}
)

// apiTags describes the tags operations are grouped by.
var apiTags = []any{
	map[string]any{"name": "health", "description": "Liveness and readiness of this node, for supervisors and load balancers"},
	map[string]any{"name": "realm", "description": "The realm itself: version, nodes, API descriptions and the realm WebSocket"},
	map[string]any{"name": "audit", "description": "The hash-chained log of every decision"},
	map[string]any{"name": "scenes", "description": "Scenes, their zones and what their policies allow"},
	map[string]any{"name": "webauthn", "description": "Passkey ceremonies: registration, sign-in and step-up, in the browser's JSON forms"},
	map[string]any{"name": "avatars", "description": "The signed-in avatar, its passkeys and template; roles (admin)"},
	map[string]any{"name": "sessions", "description": "The avatar's sessions"},
	map[string]any{"name": "twins", "description": "Digital twins, their commands and approvals"},
	map[string]any{"name": "market", "description": "Assets, EIP-712 intents, receipts and checkpoints"},
	map[string]any{"name": "agents", "description": "AI agents acting for an avatar within a delegation, authenticated with DPoP"},
	map[string]any{"name": "biometrics", "description": "Between realms: background statistics (sums over people, never a template) in C2SP signed notes"},
}

// plainTextBodies are the operations whose request and success answer are
// text, not JSON: C2SP signed notes. Each names what the two hold.
var plainTextBodies = map[string][2]string{
	"POST /v1/biometrics/background": {
		"a signed note whose text is four lines: \"zerorealm/background-request/v1\", \"realm <this realm's RP id>\", \"time <RFC 3339 UTC, within 2 minutes of the node's clock>\", \"nonce <16 bytes, unpadded base64url, never sent before>\"; signed by the reader node's background key (Ed25519, named <realm>/zerorealm/background/<node>); at most 4 KiB",
		"a signed note whose text is seven lines: \"zerorealm/background/v1\", \"realm\", \"reader\" (the key that asked), \"time\", \"nonce\" (the request's), \"people\", \"statistics\" (base64 of the sums: the count, Σμ, Σμμᵀ and the summed within-person covariances of the 58 core features); signed by this node's background key",
	},
}

// pageQueryParams are the after and limit of a paged list.
func pageQueryParams(defaultLimit, maxLimit int) []any {
	return []any{
		map[string]any{"name": "after", "in": "query", "required": false, "description": "the next of the previous page", "schema": strT},
		map[string]any{"name": "limit", "in": "query", "required": false, "description": "entries per page",
			"schema": map[string]any{"type": "integer", "minimum": 1, "maximum": maxLimit, "default": defaultLimit}},
	}
}

func chainParam(description string) any {
	return map[string]any{"name": "chain", "in": "query", "required": false, "description": description, "schema": strT}
}

// idempotencyKeyParam declares the Idempotency-Key header of an operation.
func idempotencyKeyParam(i Idempotency) any {
	description := "names the request across retries: a retry with the same key and body answers with the first answer, " +
		"the same key with another body is refused"
	return map[string]any{"name": "Idempotency-Key", "in": "header", "required": i == IdempotencyKeyRequired, "description": description,
		"schema": map[string]any{"type": "string", "minLength": 1, "maxLength": 255}}
}

// apiErrors are the problems every operation may answer, beyond those
// that follow from its shape (below), by "METHOD path".
var apiErrors = map[string]map[string]string{
	"GET /v1/audit": {"400": "a malformed query parameter; the detail names it"},
	"POST /v1/biometrics/background": {
		"400": "not a signed note, or a reader's note that is not a request; the detail says which line",
		"403": "signed by no key this realm names a reader, a signature that does not verify, a request for another realm, dated more than 2 minutes from the node's clock, or sent before; the detail says which",
		"409": "this node knows fewer people than it may share (--background-min-people)",
		"413": "a request over 4 KiB",
	},
	"GET /v1/audit/verify":                    {"400": "node is not a node name"},
	"GET /v1/audit/checkpoints":               {"400": "node is not a node name", "404": "the node has published no checkpoint"},
	"GET /v1/audit/proof/inclusion":           {"400": "a missing or malformed node, index or size", "404": "no such proof: the index or size is beyond the chain"},
	"GET /v1/audit/proof/consistency":         {"400": "a missing or malformed node, from or to", "404": "no such proof: a size is beyond the chain"},
	"GET /v1/avatars":                         {"400": "a malformed after or limit"},
	"GET /v1/assets/collections/{collection}": {"400": "a malformed after or limit"},
	"GET /v1/assets/owners/{address}":         {"400": "a malformed address, after or limit"},
	"GET /v1/receipts":                        {"400": "a malformed from or limit"},
	"POST /v1/assets/transfers":               {"409": "a request with this Idempotency-Key has no answer yet (idempotency-key-in-progress), the intent was applied and its receipt is not issued yet (receipt-pending; Retry-After), or the asset or nonce moved on (transfer-rejected)", "422": "this Idempotency-Key was used for another request (idempotency-key-reused)"},
	"POST /v1/assets/trades":                  {"409": "a request with this Idempotency-Key has no answer yet (idempotency-key-in-progress), the trade was applied and its receipt is not issued yet (receipt-pending; Retry-After), or a leg's asset or nonce moved on (transfer-rejected)", "422": "this Idempotency-Key was used for another request (idempotency-key-reused)"},
	"POST /v1/twins/{twin}/actuators/{actuator}/commands": {
		"409": "the first command with this Idempotency-Key has no answer yet, or the gateway is still carrying out an earlier grant of the command (idempotency-key-in-progress; Retry-After), the command waits for approval, or the gateway refused it",
		"422": "the value is outside the actuator's envelope, or this Idempotency-Key was used for a different command (idempotency-key-reused)",
		"429": "the actuator's command rate was exceeded",
		"502": "the gateway's acknowledgement did not verify",
		"503": "no gateway serves the twin (gateway-unavailable), or the state engine is unavailable (unavailable, request-timeout); Retry-After says when to try again"},
	"POST /v1/approvals/{id}/approve": {"409": "the command no longer waits for approval, or its requester's session has ended"},
	"POST /v1/agents/approvals/{id}/approve": {"403": "no step-up bound to the action's action_digest (the detail names it)",
		"409": "the action is no longer pending (approval-not-pending) or expired (approval-expired)"},
	"POST /v1/agents/approvals/{id}/reject": {"409": "the action is no longer pending (approval-not-pending) or expired (approval-expired)"},
	"DELETE /v1/agents/approvals/{id}":      {"409": "the action is no longer pending (approval-not-pending) or expired (approval-expired)"},
	"POST /v1/approvals/{id}/reject":        {"409": "the command no longer waits for approval"},
	"PUT /v1/avatars/{id}/roles":            {"409": "the last administrator cannot give up the admin role"},
	"POST /v1/webauthn/register/finish":     {"409": "that handle is taken"},
	"DELETE /v1/avatars/me/passkeys/{id}":   {"409": "the last passkey cannot be deleted"},
}

func buildOpenAPI(f Facts) map[string]any {
	queryParams := apiQueryParams(f)
	schemas := apiSchemas()
	agentSchemas(schemas)
	// The API descriptions themselves are documents of their own formats;
	// their schemas name the format rather than repeat it.
	schemas["OpenAPIDocument"] = obj(map[string]any{"openapi": strT, "info": freeForm("title, version, description"),
		"servers": arrayOf(freeForm("a server")), "tags": arrayOf(freeForm("a tag and its description")),
		"paths": freeForm("the operations, by path"), "components": freeForm("schemas and security schemes")}, "openapi", "info", "paths")
	schemas["AsyncAPIDocument"] = obj(map[string]any{"asyncapi": strT, "info": freeForm("title, version, description"),
		"defaultContentType": strT, "servers": freeForm("the servers, by id"),
		"channels": freeForm("the channels, by id"), "operations": freeForm("what the client sends and receives"),
		"components": freeForm("messages and schemas")}, "asyncapi", "info", "channels")
	paths := map[string]any{}
	for _, op := range apiOperations {
		key := op.method + " " + op.path
		item, _ := paths[op.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[op.path] = item
		}
		var params []any
		hasPathParams := false
		for _, seg := range strings.Split(op.path, "/") {
			if strings.HasPrefix(seg, "{") {
				hasPathParams = true
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true, "schema": strT})
			}
		}
		params = append(params, queryParams[key]...)
		if op.idempotency != NoIdempotencyKey {
			params = append(params, idempotencyKeyParam(op.idempotency))
		}
		responses := map[string]any{"default": problemResponse("any other failure, as an RFC 9457 problem")}
		for _, status := range strings.Fields(op.okStatus) {
			switch {
			case status == "101":
				responses[status] = map[string]any{"description": "switching to the WebSocket protocol"}
			case op.response == "":
				responses[status] = map[string]any{"description": "done; no body"}
			default:
				responses[status] = map[string]any{"description": "success", "content": map[string]any{"application/json": map[string]any{"schema": ref(op.response)}}}
			}
		}
		if op.request != "" || op.idempotency != NoIdempotencyKey {
			responses["400"] = problemResponse("a malformed body or header; the detail says which")
		}
		if hasPathParams {
			responses["404"] = problemResponse("nothing has that id")
		}
		o := map[string]any{"operationId": op.id, "tags": []string{op.tag}, "summary": op.summary, "responses": responses,
			// Public operations say so: an empty list means "no
			// credentials" explicitly, for generators and linters, and
			// would hold even if the document gained a global requirement.
			"security": []any{}}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.authed {
			o["security"] = []any{map[string]any{"bearer": []string{}}, map[string]any{"cookie": []string{}}}
			responses["401"] = problemResponse("no session, or one that is unknown, expired or revoked (WWW-Authenticate: Bearer)")
			responses["403"] = problemResponse("refused: a policy decision, a missing step-up or CSRF token; the detail says which and why")
		}
		agentSecurity(key, o, responses)
		if op.tag == "health" {
			responses["503"] = map[string]any{"description": "not ready: the reason and the checks, with Retry-After", "content": map[string]any{"application/json": map[string]any{"schema": ref(op.response)}}}
		} else {
			responses["503"] = problemResponse("the realm cannot answer now: its state engine is unavailable (type " + edge.ProblemBase + edge.TypeUnavailable +
				"), the request's deadline passed (" + edge.ProblemBase + edge.TypeRequestTimeout + "), or the node is starting or stopping (" +
				edge.ProblemBase + edge.TypeNotReady + "); Retry-After says when to try again, and effect whether the request may have changed something")
		}
		if op.method != http.MethodGet && op.tag != "health" {
			responses["507"] = problemResponse("the embedded store's disk is nearly full and the realm refuses writes (type " + edge.ProblemBase + edge.TypeInsufficientStore +
				"); reads still work; Retry-After says when to try again, and effect whether the request may have changed something")
		}
		if why, ok := apiLimited[key]; ok {
			responses["429"] = problemResponse(why + "; Retry-After says when to try again")
		}
		for status, why := range apiErrors[key] {
			responses[status] = problemResponse(why)
		}
		if op.request != "" {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(op.request)}}}
		}
		if text, ok := plainTextBodies[key]; ok {
			plain := func(what string) map[string]any {
				return map[string]any{"text/plain; charset=utf-8": map[string]any{"schema": map[string]any{"type": "string", "description": what}}}
			}
			o["requestBody"] = map[string]any{"required": true, "content": plain(text[0])}
			responses["200"] = map[string]any{"description": "success", "content": plain(text[1])}
		}
		item[strings.ToLower(op.method)] = o
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "ZeroRealm API", "version": "1",
			"description": "Request bodies are JSON objects of at most 64 KiB. Unknown fields, a member named twice in one object " +
				"(also when the names differ only in case) and text that is not UTF-8 are refused with 400 and a problem that says where. " +
				"Errors are RFC 9457 problems (application/problem+json) whose type is a stable URI per cause under " + edge.ProblemBase +
				" (docs/errors.md lists them). 503 with Retry-After means \"not now\", never \"sign in again\"."},
		"servers": []any{map[string]any{"url": "/", "description": "the realm node that serves this document"}},
		"tags":    apiTags,
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "the token a finish call answers with"},
				"dpop":   dpopScheme,
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": edge.SessionCookie,
					"description": "the web console's HttpOnly session; unsafe methods also need the X-CSRF-Token header"},
			},
		},
	}
}

// IdempotencyKeys says, for each documented operation ("METHOD /path"),
// whether it reads the Idempotency-Key header, so the tests can hold the
// document to what the handlers do.
func IdempotencyKeys() map[string]Idempotency {
	out := make(map[string]Idempotency, len(apiOperations))
	for _, o := range apiOperations {
		out[o.method+" "+o.path] = o.idempotency
	}
	return out
}

// ServeOpenAPI answers the OpenAPI 3.1 document of the realm's HTTP API.
func (d *Docs) ServeOpenAPI(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, d.openAPI)
}
