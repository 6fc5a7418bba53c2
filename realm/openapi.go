package realm

import (
	"net/http"
	"strings"
	"sync"
)

// apiOperation describes one /v1 route for the OpenAPI document. The list
// is checked against the routes the realm registers (openapi_test.go), so
// a new route without an entry fails the tests.
type apiOperation struct {
	method, path, tag, summary string
	authed                     bool
	request, response          string // component schema names, "" for none / a generic object
	okStatus                   string
}

var apiOperations = []apiOperation{
	{"GET", "/livez", "health", "Liveness: 200 while the process serves HTTP; restart the node only when this fails", false, "", "", "200"},
	{"GET", "/readyz", "health", "Readiness: 200 when this node can decide and write now (NATS connected, JetStream answering, every stream and bucket it writes has a leader, the embedded store's disk above its free-space minimum); 503 with reason and checks otherwise. Probed in the background once a second", false, "", "", "200"},
	{"GET", "/healthz", "health", "The readiness verdict of /readyz with the node's version, scenes and replica count; 503 with the reason when not ready", false, "", "", "200"},
	{"GET", "/v1/version", "realm", "Build version", false, "", "", "200"},
	{"GET", "/v1/nodes", "realm", "Live realm nodes", false, "", "", "200"},
	{"GET", "/v1/audit", "audit", "Decisions, newest first, a page at a time (filters action, decision, actor, resource, node, since, until; paging limit, before). Every event for the admin or auditor role (Config.AuditRoles), only the caller's own otherwise", true, "", "AuditPage", "200"},
	{"GET", "/v1/audit/verify", "audit", "Verify every node's audit chain as a transparency log: hash links, and the chain against the signed checkpoints kept in this node's data directory, in AUDITCP and by its witness. Public: counts, heads, roots, checkpoints and findings, no event", false, "", "AuditVerify", "200"},
	{"GET", "/v1/audit/checkpoints", "audit", "The newest signed checkpoint (C2SP tlog-checkpoint in a signed note) of every node's chain, or of ?node=, with the cosignatures (C2SP tlog-cosignature) of its witnesses; for one node with Accept: text/plain, the signed note itself", false, "", "AuditCheckpoints", "200"},
	{"GET", "/v1/audit/proof/inclusion", "audit", "RFC 6962 inclusion proof of a node's event (index from 1) in its tree of size events; hashes base64", false, "", "AuditProof", "200"},
	{"GET", "/v1/audit/proof/consistency", "audit", "RFC 6962 consistency proof between a node's trees of from and to events; hashes base64", false, "", "AuditProof", "200"},
	{"GET", "/v1/scenes", "scenes", "List scenes", false, "", "", "200"},
	{"GET", "/v1/scenes/{id}", "scenes", "One scene", false, "", "", "200"},
	{"GET", "/v1/scenes/{id}/access", "scenes", "What the scene's policies allow the avatar now", true, "", "", "200"},
	{"GET", "/v1/scenes/{id}/me", "scenes", "Where the realm sees the avatar in the scene: the zone its twin commands are decided with", true, "", "Standing", "200"},
	{"POST", "/v1/webauthn/register/begin", "webauthn", "Begin a passkey registration: a new avatar, or (signed in, after a step-up bound to add_passkey_action_digest) a passkey added to the avatar", false, "", "", "200"},
	{"POST", "/v1/webauthn/register/finish", "webauthn", "Finish a passkey registration; returns a session", false, "", "", "200"},
	{"POST", "/v1/webauthn/login/begin", "webauthn", "Begin a passkey sign-in", false, "", "", "200"},
	{"POST", "/v1/webauthn/login/finish", "webauthn", "Finish a passkey sign-in; returns a session", false, "", "", "200"},
	{"POST", "/v1/webauthn/stepup/begin", "webauthn", "Begin a step-up bound to an action digest", true, "", "", "200"},
	{"POST", "/v1/webauthn/stepup/finish", "webauthn", "Finish a step-up", true, "", "", "200"},
	{"GET", "/v1/avatars/me", "avatars", "The signed-in avatar", true, "", "", "200"},
	{"DELETE", "/v1/avatars/me/passkeys/{id}", "avatars", "Delete a passkey (needs a step-up)", true, "", "", "200"},
	{"GET", "/v1/avatars/me/template", "avatars", "The avatar's biometric template status", true, "", "", "200"},
	{"DELETE", "/v1/avatars/me/template", "avatars", "Delete the avatar's biometric template", true, "", "", "200"},
	{"GET", "/v1/avatars", "avatars", "Every avatar with its roles, by name (after, limit; admin role)", true, "", "AvatarPage", "200"},
	{"POST", "/v1/avatars/{id}/roles/digest", "avatars", "The action digest to step up for before a role change (admin role)", true, "RolesRequest", "", "200"},
	{"PUT", "/v1/avatars/{id}/roles", "avatars", "Replace an avatar's roles (admin role, step-up bound to the change)", true, "RolesRequest", "", "200"},
	{"GET", "/v1/sessions", "sessions", "The avatar's sessions", true, "", "", "200"},
	{"POST", "/v1/sessions/logout", "sessions", "End this session", true, "", "", "200"},
	{"POST", "/v1/sessions/logout-all", "sessions", "End every session of the avatar", true, "", "", "200"},
	{"DELETE", "/v1/sessions/{id}", "sessions", "Revoke one session", true, "", "", "200"},
	{"GET", "/v1/realm", "realm", "The realm WebSocket (upgrade)", true, "", "", "101"},
	{"GET", "/v1/twins", "twins", "The twins the avatar may view (ViewTwin, decided by each twin's scene policy; 403 when none)", true, "", "", "200"},
	{"GET", "/v1/twins/feed", "twins", "Twin console feed (WebSocket) about the twins the avatar may view (ViewTwin, decided at connect; 403 when none)", true, "", "", "200"},
	{"GET", "/v1/twins/{twin}", "twins", "One twin, if the avatar may view it (ViewTwin)", true, "", "", "200"},
	{"POST", "/v1/twins/{twin}/actuators/{actuator}/commands", "twins", "Command an actuator, from the zone the realm sees the operator in (Idempotency-Key header required)", true, "CommandRequest", "", "200"},
	{"POST", "/v1/twins/{twin}/actuators/{actuator}/commands/digest", "twins", "Digest of a command, for its step-up", true, "CommandRequest", "", "200"},
	{"GET", "/v1/approvals", "twins", "Pending command approvals of the twins the avatar may view (ViewTwin)", true, "", "", "200"},
	{"GET", "/v1/approvals/{id}", "twins", "One approval, if the avatar may view its twin (ViewTwin)", true, "", "", "200"},
	{"POST", "/v1/approvals/{id}/approve", "twins", "Approve a command", true, "", "", "200"},
	{"POST", "/v1/approvals/{id}/reject", "twins", "Reject a command", true, "", "", "200"},

	{"GET", "/v1/openapi.json", "market", "This document", false, "", "", "200"},
	{"GET", "/v1/assets/domain", "market", "The EIP-712 domain, the node's receipt signer and the treasury", false, "", "", "200"},
	{"GET", "/v1/assets/signers", "market", "Every realm node's receipt signers, current and retired, with since/until (a convenience: pin keys offline with zerorealm keys export-public)", false, "", "Signers", "200"},
	{"GET", "/v1/assets/collections", "market", "Every scene's collections", false, "", "", "200"},
	{"GET", "/v1/assets/collections/{collection}", "market", "A collection's items or balances (after, limit)", false, "", "Page", "200"},
	{"GET", "/v1/assets/items/{collection}/{item}", "market", "One unique item with its history", false, "", "Asset", "200"},
	{"GET", "/v1/assets/owners/{address}", "market", "An owner's items and balances (after, limit), and its next nonce", false, "", "Page", "200"},
	{"GET", "/v1/assets/wallet", "market", "The avatar's linked wallets and custodial address", true, "", "", "200"},
	{"POST", "/v1/assets/wallet/link/payload", "market", "The LinkWallet typed data for a wallet to sign", true, "LinkRequest", "Payload", "200"},
	{"POST", "/v1/assets/wallet/link", "market", "Link a wallet with its LinkWallet signature", true, "LinkRequest", "", "200"},
	{"POST", "/v1/assets/wallet/custodial", "market", "Create (or return) the avatar's custodial address", true, "", "", "200"},
	{"POST", "/v1/assets/intents/transfer", "market", "The Transfer typed data to sign (eth_signTypedData_v4)", false, "TransferRequest", "Payload", "200"},
	{"POST", "/v1/assets/intents/trade", "market", "The Trade typed data both owners sign", false, "TradeRequest", "Payload", "200"},
	{"POST", "/v1/assets/intents/cancel", "market", "The CancelIntents typed data", false, "CancelRequest", "Payload", "200"},
	{"POST", "/v1/assets/transfers", "market", "Apply a transfer (Idempotency-Key header honoured)", true, "TransferRequest", "TransferAnswer", "201"},
	{"POST", "/v1/assets/trades", "market", "Apply both legs of a trade or neither (Idempotency-Key header honoured)", true, "TradeRequest", "TransferAnswer", "201"},
	{"POST", "/v1/assets/cancel", "market", "Raise an owner's nonce floor, cancelling lower nonces", true, "CancelRequest", "", "200"},
	{"POST", "/v1/assets/mint", "market", "Mint (admin role)", true, "", "", "201"},
	{"GET", "/v1/receipts", "market", "A receipt chain (chain, from, limit)", false, "", "", "200"},
	{"GET", "/v1/receipts/{digest}", "market", "The receipt of an intent (by intent or receipt digest)", false, "", "Receipt", "200"},
	{"GET", "/v1/receipts/{digest}/proof", "market", "The receipt with its inclusion proof in a signed checkpoint", false, "", "Receipt", "200"},
	{"GET", "/v1/checkpoints", "market", "A chain's signed checkpoints (chain)", false, "", "", "200"},
}

// apiQueryParams are the query parameters of the operations that take
// some, by "METHOD path".
var apiQueryParams = map[string][]any{
	"GET /v1/audit":                   auditQueryParams(),
	"GET /v1/audit/verify":            {auditNodeParam(false)},
	"GET /v1/audit/checkpoints":       {auditNodeParam(false)},
	"GET /v1/audit/proof/inclusion":   {auditNodeParam(true), countParam("index", "the event's index in its chain (from 1)"), countParam("size", "the tree size, e.g. a checkpoint's")},
	"GET /v1/audit/proof/consistency": {auditNodeParam(true), countParam("from", "the older tree size"), countParam("to", "the newer tree size")},
}

// apiLimited are the operations a limit may refuse with 429, by
// "METHOD path", with the limit.
var apiLimited = map[string]string{
	"POST /v1/webauthn/register/begin":  "too many ceremonies from this client address, or too many pending on this node",
	"POST /v1/webauthn/register/finish": "too many ceremonies from this client address",
	"POST /v1/webauthn/login/begin":     "too many ceremonies from this client address, or too many pending on this node",
	"POST /v1/webauthn/login/finish":    "too many ceremonies from this client address, or the avatar has too many sessions",
	"POST /v1/webauthn/stepup/begin":    "too many ceremonies from this client address, or too many pending on this node",
	"POST /v1/webauthn/stepup/finish":   "too many ceremonies from this client address",
	"GET /v1/realm":                     "the avatar holds too many live connections on this node",
}

func problemResponse(description string) map[string]any {
	return map[string]any{"description": description, "content": map[string]any{"application/problem+json": map[string]any{"schema": ref("Problem")}}}
}

var openAPIDoc = sync.OnceValue(buildOpenAPI)

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

func buildOpenAPI() map[string]any {
	transfer := obj(map[string]any{"collection": strT, "assetId": strT, "amount": uintT, "from": addrT, "to": addrT, "nonce": uintT, "deadline": uintT},
		"collection", "amount", "from", "to", "nonce", "deadline")
	domain := obj(map[string]any{"name": strT, "version": strT, "chainId": uintT, "verifyingContract": addrT})
	typed := obj(map[string]any{"types": map[string]any{"type": "object"}, "primaryType": strT, "domain": domain, "message": map[string]any{"type": "object"}},
		"types", "primaryType", "domain", "message")
	receipt := obj(map[string]any{"receipt": ref("TypedData"), "digest": hashT, "signature": sigT, "signer": addrT,
		"time": map[string]any{"type": "string", "format": "date-time"}, "proof": map[string]any{"type": "object"}})
	schemas := map[string]any{
		"TransferMessage":  transfer,
		"Domain":           domain,
		"TypedData":        typed,
		"TransferRequest":  obj(map[string]any{"intent": ref("TransferMessage"), "signature": sigT, "domain": ref("Domain")}, "intent"),
		"TradeRequest":     obj(map[string]any{"give": ref("TransferMessage"), "take": ref("TransferMessage"), "give_signature": sigT, "take_signature": sigT, "domain": ref("Domain")}, "give", "take"),
		"CancelRequest":    obj(map[string]any{"owner": addrT, "nonceFloor": uintT, "deadline": uintT, "signature": sigT}, "owner", "nonceFloor", "deadline"),
		"LinkRequest":      obj(map[string]any{"wallet": addrT, "deadline": uintT, "signature": sigT}, "wallet"),
		"Payload":          obj(map[string]any{"typed_data": ref("TypedData"), "digest": hashT}),
		"Receipt":          receipt,
		"TransferAnswer":   obj(map[string]any{"digest": hashT, "sequence": map[string]any{"type": "integer"}, "receipt": ref("Receipt")}),
		"Asset":            obj(map[string]any{"collection": strT, "item": strT, "owner": addrT, "sequence": map[string]any{"type": "integer"}, "history": map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}),
		"Page":             obj(map[string]any{"next": strT}),
		"AuditPage":        auditPageSchema(),
		"AuditVerify":      auditVerifySchema(),
		"AuditCheckpoints": auditCheckpointsSchema(),
		"AuditProof":       auditProofSchema(),
		"Signers":          signersSchema(),
		"RolesRequest":     obj(map[string]any{"roles": map[string]any{"type": "array", "maxItems": 32, "items": map[string]any{"type": "string", "pattern": "^[a-z0-9_.:-]{1,64}$"}}}, "roles"),
		"AvatarPage": obj(map[string]any{"next": strT, "avatars": map[string]any{"type": "array", "items": obj(map[string]any{
			"id": strT, "name": strT, "display_name": strT, "roles": map[string]any{"type": "array", "items": strT}, "created": map[string]any{"type": "string", "format": "date-time"}})}}),
		"Problem": obj(map[string]any{
			"type": map[string]any{"type": "string", "format": "uri", "description": "the cause, one stable URI per cause under " + problemBase +
				" (docs/errors.md lists each: status, when, what to do, whether the effect may have happened)"},
			"title": strT, "status": map[string]any{"type": "integer"}, "detail": strT,
			"instance": strT, "request_id": strT,
			"effect": map[string]any{"type": "string", "enum": []string{"none", "unknown"}, "description": "on 503 unavailable and request-timeout: whether the request may have changed something (unknown: read before repeating a write)"}}),
		"CommandRequest": obj(map[string]any{
			"op":     map[string]any{"type": "string", "enum": []string{"set", "stop"}},
			"value":  map[string]any{"type": "number", "description": "set only: the target, in the actuator's unit"},
			"reason": map[string]any{"type": "string", "maxLength": 280},
			"zone": map[string]any{"type": "string", "description": "optional assertion of the zone the operator stands in. The command is decided with the zone " +
				"the realm's presence sees the avatar in (its /v1/realm connection in the twin's scene), never with this field; a zone that differs " +
				"from the observed one refuses the command (403, zone_mismatch). Unknown fields are refused."},
		}, "op"),
		"Standing": obj(map[string]any{"scene": strT, "present": map[string]any{"type": "boolean"},
			"zone": map[string]any{"type": "string", "description": "the zone the avatar was admitted into, \"\" for none"}, "where": strT}),
	}
	paths := map[string]any{}
	for _, op := range apiOperations {
		item, _ := paths[op.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[op.path] = item
		}
		var params []any
		for _, seg := range strings.Split(op.path, "/") {
			if strings.HasPrefix(seg, "{") {
				params = append(params, map[string]any{"name": strings.Trim(seg, "{}"), "in": "path", "required": true, "schema": strT})
			}
		}
		params = append(params, apiQueryParams[op.method+" "+op.path]...)
		body := map[string]any{"type": "object"}
		if op.response != "" {
			body = ref(op.response)
		}
		o := map[string]any{
			"tags": []string{op.tag}, "summary": op.summary,
			"responses": map[string]any{
				op.okStatus: map[string]any{"description": "success", "content": map[string]any{"application/json": map[string]any{"schema": body}}},
				"default":   problemResponse("RFC 9457 problem; its type says the cause (docs/errors.md)"),
				"503": problemResponse("the realm cannot answer now: its state engine is unavailable (type " + problemBase + typeUnavailable +
					") or the node is starting or stopping (" + problemBase + typeNotReady + "); Retry-After says when to try again"),
			},
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		responses := o["responses"].(map[string]any)
		if op.authed {
			o["security"] = []any{map[string]any{"bearer": []string{}}, map[string]any{"cookie": []string{}}}
			responses["401"] = problemResponse("no session, or one that is unknown, expired or revoked (WWW-Authenticate: Bearer)")
			responses["403"] = problemResponse("refused: a policy decision, a missing step-up or CSRF token; the detail says which and why")
		}
		if why, ok := apiLimited[op.method+" "+op.path]; ok {
			responses["429"] = problemResponse(why + "; Retry-After says when to try again")
		}
		if op.request != "" {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(op.request)}}}
		}
		item[strings.ToLower(op.method)] = o
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "ZeroRealm API", "version": "1",
			"description": "Request bodies are JSON objects of at most 64 KiB. Unknown fields, a member named twice in one object " +
				"(also when the names differ only in case) and text that is not UTF-8 are refused with 400 and a problem that says where."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer"},
				"cookie": map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie},
			},
		},
	}
}

func (r *Realm) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, openAPIDoc())
}
