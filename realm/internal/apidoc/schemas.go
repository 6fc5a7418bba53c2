package apidoc

import (
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// The component schemas of the OpenAPI document: what each request body
// and success response of /v1 holds. They describe the wire views the
// handlers write (map literals and the *View types), so a field added to a
// view belongs here too.

func arrayOf(items any) map[string]any { return map[string]any{"type": "array", "items": items} }

func described(schema map[string]any, description string) map[string]any {
	if _, isRef := schema["$ref"]; isRef {
		// A $ref's siblings are ignored by OpenAPI 3.0 tools (Redocly's
		// spec-ref-siblings): the description goes beside an allOf of
		// the one reference instead.
		return map[string]any{"allOf": []any{schema}, "description": description}
	}
	out := make(map[string]any, len(schema)+1)
	for k, v := range schema {
		out[k] = v
	}
	out["description"] = description
	return out
}

// freeForm is an object whose members are not fixed by the API (signals,
// EIP-712 types and messages); the description says what they are, so a
// generator gets a map rather than an empty type.
func freeForm(description string) map[string]any {
	return map[string]any{"type": "object", "additionalProperties": true, "description": description}
}

var (
	boolT    = map[string]any{"type": "boolean"}
	intT     = map[string]any{"type": "integer", "format": "int64"}
	numT     = map[string]any{"type": "number"}
	timeT    = map[string]any{"type": "string", "format": "date-time"}
	b64urlT  = map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "description": "base64url without padding"}
	digestT  = map[string]any{"type": "string", "pattern": "^0x[0-9a-f]{64}$", "description": "a 32-byte action digest, 0x and 64 hex digits"}
	stringsT = arrayOf(strT)
	riskT    = map[string]any{"type": "string", "enum": []string{"low", "medium", "high", "critical"}}
)

// webAuthnSchemas are the browser's JSON forms of the WebAuthn options and
// credentials (WebAuthn Level 3, PublicKeyCredential.toJSON and
// parseCreationOptionsFromJSON), which the realm sends and accepts as is.
func webAuthnSchemas() map[string]any {
	descriptor := obj(map[string]any{"type": map[string]any{"type": "string", "enum": []string{"public-key"}}, "id": b64urlT,
		"transports": stringsT}, "type", "id")
	userVerification := map[string]any{"type": "string", "enum": []string{"required", "preferred", "discouraged"}}
	return map[string]any{
		"PublicKeyCredentialCreationOptionsJSON": obj(map[string]any{
			"rp":                 obj(map[string]any{"id": strT, "name": strT}, "name"),
			"user":               obj(map[string]any{"id": b64urlT, "name": strT, "displayName": strT}, "id", "name", "displayName"),
			"challenge":          b64urlT,
			"pubKeyCredParams":   arrayOf(obj(map[string]any{"type": strT, "alg": intT}, "type", "alg")),
			"timeout":            intT,
			"excludeCredentials": arrayOf(ref("PublicKeyCredentialDescriptorJSON")),
			"authenticatorSelection": obj(map[string]any{"authenticatorAttachment": strT, "residentKey": strT,
				"requireResidentKey": boolT, "userVerification": userVerification}),
			"hints":       stringsT,
			"attestation": map[string]any{"type": "string", "enum": []string{"none", "indirect", "direct", "enterprise"}},
			"extensions":  freeForm("client extension inputs"),
		}, "rp", "user", "challenge", "pubKeyCredParams"),
		"PublicKeyCredentialRequestOptionsJSON": obj(map[string]any{
			"challenge":        b64urlT,
			"timeout":          intT,
			"rpId":             strT,
			"allowCredentials": arrayOf(ref("PublicKeyCredentialDescriptorJSON")),
			"userVerification": userVerification,
			"hints":            stringsT,
			"extensions":       freeForm("client extension inputs"),
		}, "challenge"),
		"PublicKeyCredentialDescriptorJSON": descriptor,
		"RegistrationBegin": obj(map[string]any{"publicKey": ref("PublicKeyCredentialCreationOptionsJSON"),
			"ceremony_id": described(strT, "pass back with the finish call")}, "publicKey", "ceremony_id"),
		"AssertionBegin": obj(map[string]any{"publicKey": ref("PublicKeyCredentialRequestOptionsJSON"),
			"mediation":   strT,
			"ceremony_id": described(strT, "pass back with the finish call")}, "publicKey", "ceremony_id"),
		"RegistrationResponseJSON": obj(map[string]any{
			"id": b64urlT, "rawId": b64urlT, "type": map[string]any{"type": "string", "enum": []string{"public-key"}},
			"authenticatorAttachment": strT,
			"response": obj(map[string]any{"clientDataJSON": b64urlT, "attestationObject": b64urlT, "transports": stringsT,
				"authenticatorData": b64urlT, "publicKey": b64urlT, "publicKeyAlgorithm": intT}, "clientDataJSON", "attestationObject"),
			"clientExtensionResults": freeForm("client extension outputs"),
		}, "id", "rawId", "type", "response"),
		"AuthenticationResponseJSON": obj(map[string]any{
			"id": b64urlT, "rawId": b64urlT, "type": map[string]any{"type": "string", "enum": []string{"public-key"}},
			"authenticatorAttachment": strT,
			"response": obj(map[string]any{"clientDataJSON": b64urlT, "authenticatorData": b64urlT, "signature": b64urlT,
				"userHandle": b64urlT}, "clientDataJSON", "authenticatorData", "signature"),
			"clientExtensionResults": freeForm("client extension outputs"),
		}, "id", "rawId", "type", "response"),
		"RegisterBeginRequest": obj(map[string]any{
			"name": map[string]any{"type": "string", "pattern": avatar.NamePattern, "minLength": avatar.MinNameLen, "maxLength": avatar.MaxNameLen,
				"description": "the avatar's handle, " + avatar.NameRule + "; ignored when a signed-in avatar adds a passkey"},
			"display_name": described(strT, "the name people see; defaults to name"),
		}),
		"LoginBeginRequest":  obj(map[string]any{"name": described(strT, "optional: the handle; without it the browser offers its discoverable passkeys")}),
		"StepUpBeginRequest": obj(map[string]any{"action_digest": digestT}, "action_digest"),
		"RegisterFinishRequest": obj(map[string]any{"ceremony_id": strT, "credential": ref("RegistrationResponseJSON"),
			"use_cookie": described(boolT, "answer with an HttpOnly session cookie and a CSRF token instead of a bearer token")}, "ceremony_id", "credential"),
		"LoginFinishRequest": obj(map[string]any{"ceremony_id": strT, "credential": ref("AuthenticationResponseJSON"),
			"use_cookie": described(boolT, "answer with an HttpOnly session cookie and a CSRF token instead of a bearer token")}, "ceremony_id", "credential"),
		"StepUpFinishRequest": obj(map[string]any{"ceremony_id": strT, "credential": ref("AuthenticationResponseJSON"), "action_digest": digestT},
			"ceremony_id", "credential", "action_digest"),
	}
}

// accountSchemas are avatars, sessions, trust and roles.
func accountSchemas() map[string]any {
	passkey := obj(map[string]any{"id": b64urlT, "name": strT, "created": timeT, "last_used": timeT, "attestation_format": strT,
		"aaguid": described(strT, "hex"), "authenticator": described(strT, "the authenticator's name by its AAGUID in the community list the realm ships; empty when the AAGUID is not in it"), "attested": boolT, "synced": boolT, "cloned": boolT, "device_assurance": strT,
		"delete_action_digest": digestT}, "id", "created")
	return map[string]any{
		"Avatar": obj(map[string]any{"id": strT, "name": strT, "display_name": strT, "roles": stringsT, "wallets": stringsT,
			"created": timeT, "passkeys": arrayOf(passkey), "add_passkey_action_digest": digestT}, "id", "name", "roles", "passkeys"),
		"AvatarSummary": obj(map[string]any{"id": strT, "name": strT, "display_name": strT, "roles": stringsT, "created": timeT}, "id", "name", "roles"),
		"Session": obj(map[string]any{"id": strT, "created": timeT, "last_seen": timeT, "expires": timeT, "node": strT,
			"current": described(boolT, "lists only: the session of this request"), "user_agent": described(strT, "lists only"),
			"browser": described(strT, "lists only: the browser and its major version read from the user agent, e.g. Chrome 131; empty when not recognized"),
			"os":      described(strT, "lists only: the operating system read from the user agent, e.g. macOS, Android 14; empty when not recognized")}, "id", "expires"),
		"Trust": obj(map[string]any{
			"state": map[string]any{"type": "string", "description": "the session's trust state, e.g. trusted, suspect, quarantined"},
			"score": numT, "at": timeT,
			"factors":     arrayOf(obj(map[string]any{"name": strT, "value": map[string]any{"description": "the factor's observed value"}, "effect": numT}, "name")),
			"explanation": strT,
			"context":     freeForm("the signals the policies see as context.trust"),
		}, "state", "score"),
		"SignedIn": obj(map[string]any{"avatar": ref("Avatar"), "session": ref("Session"), "trust": ref("Trust"),
			"token": described(strT, "the bearer token, unless use_cookie was asked for"),
			"csrf":  described(strT, "with a cookie session: send back in the X-CSRF-Token header")}, "avatar"),
		"Me": obj(map[string]any{"avatar": ref("Avatar"), "session": ref("Session"), "trust": ref("Trust"),
			"csrf": described(strT, "with a cookie session only")}, "avatar", "session", "trust"),
		"StepUpVerified": obj(map[string]any{"verified": boolT, "action_digest": digestT, "trust": ref("Trust")}, "verified", "action_digest"),
		"Sessions":       obj(map[string]any{"sessions": arrayOf(ref("Session"))}, "sessions"),
		"Revoked": obj(map[string]any{
			"revoked":        described(intT, "how many live sessions the store marked revoked (for logout-all, 0 while stored is false: every session of the avatar begun until then is refused on every told node anyway)"),
			"nodes_told":     described(intT, "realm nodes that refuse the sessions now: this one and every other that acknowledged the revocation broadcast"),
			"nodes_live":     described(intT, "realm nodes this one believed live (node registry and presence heartbeats), itself included; nodes_told below it means some did not acknowledge in time and learn it from the store"),
			"stored":         described(boolT, "whether the sessions store holds the revocation already; when false (the sessions bucket is electing a leader, say) this node keeps retrying in the background, every told node stores it too a few seconds later, and every told node refuses the sessions meanwhile"),
			"agents_stopped": described(boolT, "logout-all only: whether the avatar's agents' delegations are revoked on this node and every live node it told (their store follows in the background, like the sessions'); false only if they could not be stopped"),
		}, "revoked", "nodes_told", "nodes_live", "stored"),
		"DelegationRevoked": obj(map[string]any{
			"nodes_told": described(intT, "realm nodes that refuse the delegation, and everything derived from it, now: this one and every other that acknowledged the revocation broadcast; this node told the twin gateways at once, and every told node repeats it in its heartbeats to them"),
			"nodes_live": described(intT, "realm nodes this one believed live, itself included; nodes_told below it means some did not acknowledge in time and learn it from the store"),
			"stored":     described(boolT, "whether the agent-revocations bucket holds the revocation already; when false this node keeps retrying in the background, every told node stores it too a few seconds later, and every told node refuses the delegation meanwhile"),
		}, "nodes_told", "nodes_live", "stored"),
		"Template": obj(map[string]any{"enrolled": boolT, "delete_action_digest": digestT,
			"enrollment": freeForm("progress of an enrollment under way on this session's XR stream")}, "enrolled", "delete_action_digest"),
		"RolesDigest":  obj(map[string]any{"avatar": strT, "roles": stringsT, "action_digest": digestT}, "avatar", "roles", "action_digest"),
		"RolesChanged": obj(map[string]any{"avatar": ref("AvatarSummary"), "before": stringsT}, "avatar", "before"),
		"AvatarPage":   obj(map[string]any{"next": strT, "avatars": arrayOf(ref("AvatarSummary"))}, "avatars"),
		"RolesRequest": obj(map[string]any{"roles": map[string]any{"type": "array", "maxItems": 32, "items": map[string]any{"type": "string", "pattern": "^[a-z0-9_.:-]{1,64}$"}}}, "roles"),
	}
}

// realmSchemas are the realm's own state: version, nodes, scenes, access
// and the audit log.
func realmSchemas() map[string]any {
	decision := obj(map[string]any{"action": strT, "resource": strT, "allow": boolT, "policies": stringsT, "reason": strT}, "action", "resource", "allow", "policies")
	zone := obj(map[string]any{"id": strT, "name": strT, "min": arrayOf(numT), "max": arrayOf(numT)}, "id")
	actuator := obj(map[string]any{"id": strT, "name": strT, "unit": strT, "min": numT, "max": numT, "max_rate": numT,
		"risk": riskT}, "id")
	return map[string]any{
		"Version": obj(map[string]any{"version": strT, "revision": strT, "modified": boolT, "go": strT}, "version", "go"),
		"Nodes": obj(map[string]any{"self": strT, "nodes": arrayOf(obj(map[string]any{"node": strT, "url": strT, "version": strT,
			"started": timeT, "last_seen": timeT}, "node"))}, "self", "nodes"),
		"SceneSummary": obj(map[string]any{"id": strT, "name": strT, "description": strT}, "id"),
		"Scenes":       obj(map[string]any{"scenes": arrayOf(ref("SceneSummary"))}, "scenes"),
		"Scene": obj(map[string]any{"id": strT, "name": strT, "description": strT, "zones": arrayOf(zone),
			"twins":       arrayOf(obj(map[string]any{"id": strT, "name": strT, "zone": strT, "actuators": arrayOf(actuator)}, "id")),
			"collections": arrayOf(obj(map[string]any{"id": strT, "name": strT, "kind": strT, "soulbound": boolT, "decimals": intT}, "id", "kind")),
			"policies":    stringsT}, "id", "zones", "twins", "collections", "policies"),
		"Decision":    decision,
		"SceneAccess": obj(map[string]any{"scene": strT, "trust": ref("Trust"), "decisions": arrayOf(ref("Decision"))}, "scene", "decisions"),
		"Standing": obj(map[string]any{"scene": strT, "present": boolT,
			"zone": map[string]any{"type": "string", "description": "the zone the avatar was admitted into, \"\" for none"}, "where": strT}, "scene", "present", "zone"),
		"AuditPage":        auditPageSchema(),
		"AuditVerify":      auditVerifySchema(),
		"AuditCheckpoints": auditCheckpointsSchema(),
		"AuditProof":       auditProofSchema(),
		"Problem": obj(map[string]any{
			"type": map[string]any{"type": "string", "format": "uri-reference", "description": "the cause: one stable URI per cause under " + edge.ProblemBase +
				" (docs/errors.md lists each: status, when, what to do, whether the effect may have happened)"},
			"title":      described(strT, "short summary of the problem type"),
			"status":     map[string]any{"type": "integer", "minimum": 100, "maximum": 599, "description": "the HTTP status code"},
			"detail":     described(strT, "what went wrong with this request, for people"),
			"instance":   map[string]any{"type": "string", "format": "uri-reference"},
			"request_id": described(strT, "the X-Request-Id of the request, to find it in logs and the audit"),
			"effect": map[string]any{"type": "string", "enum": []string{"none", "unknown"},
				"description": "on 503 unavailable and request-timeout: whether the request may have changed something (unknown: read before repeating a write)"},
		}, "type", "title", "status"),
		"Liveness": obj(map[string]any{"status": described(strT, "alive"), "node": strT}, "status"),
		"Readiness": obj(map[string]any{"status": described(strT, "ready, or not ready"), "node": strT,
			"reason": described(strT, "why not ready"),
			"checks": map[string]any{"type": "object", "additionalProperties": boolT,
				"description": "each check's verdict at the last probe: nats, jetstream, leaders, disk"},
			"turning": described(obj(map[string]any{
				"probes": described(map[string]any{"type": "integer"}, "how many probes in a row disagree with status"),
				"of":     described(map[string]any{"type": "integer"}, "how many in a row turn it: 3 to turn a ready node not ready, 2 to turn it ready again"),
				"found":  described(strT, "what the last probe found: why it failed, or passing again"),
			}, "probes", "of", "found"), "present while the last probes disagree with status, which holds until enough in a row do")}, "status"),
		"Health": obj(map[string]any{"status": described(strT, "ok, or why not ready"), "node": strT, "version": strT,
			"reason": described(strT, "why not ready"), "scenes": map[string]any{"type": "integer"}, "replicas": map[string]any{"type": "integer"}}, "status"),
	}
}

// twinSchemas are digital twins, their commands and approvals.
func twinSchemas() map[string]any {
	signed := obj(map[string]any{"typed_data": ref("TypedData"), "signature": sigT, "signer": addrT}, "typed_data", "signature", "signer")
	ack := obj(map[string]any{"result": strT, "reason": strT, "detail": strT, "value": numT, "target": numT,
		"typed_data": ref("TypedData"), "signature": sigT, "signer": addrT}, "result", "typed_data", "signature", "signer")
	command := obj(map[string]any{"twin": strT, "actuator": strT, "op": strT, "value": numT, "unit": strT, "key": strT,
		"operator": strT, "hash": hashT, "reason": strT, "zone": strT}, "twin", "actuator", "op", "hash")
	approval := obj(map[string]any{"id": strT, "status": strT, "requester": strT, "approver": strT, "created": timeT, "expires": timeT},
		"id", "status", "requester")
	state := obj(map[string]any{"value": numT, "target": numT, "moving": boolT, "at": timeT, "seq": intT}, "value", "target", "moving", "at")
	liveActuator := obj(map[string]any{"id": strT, "name": strT, "unit": strT, "min": numT, "max": numT, "max_rate": numT, "risk": riskT,
		"state": state}, "id")
	return map[string]any{
		"CommandRequest": obj(map[string]any{
			"op":     map[string]any{"type": "string", "enum": []string{"set", "stop"}},
			"value":  map[string]any{"type": "number", "description": "set only: the target, in the actuator's unit"},
			"reason": map[string]any{"type": "string", "maxLength": 280},
			"zone": map[string]any{"type": "string", "description": "optional assertion of the zone the operator stands in. The command is decided with the zone " +
				"the realm's presence sees the avatar in (its /v1/realm connection in the twin's scene), never with this field; a zone that differs " +
				"from the observed one refuses the command (403, zone_mismatch). Unknown fields are refused."},
		}, "op"),
		"SignedTypedData": signed,
		"Acknowledgement": ack,
		"TwinCommand":     command,
		"Approval":        approval,
		"CommandAnswer": obj(map[string]any{
			"status": map[string]any{"type": "string", "enum": []string{"done", "refused", "failed", "pending_approval", "pending_owner_approval", "rejected", "in_progress"},
				"description": "pending_approval (202): a critical command waits for a second operator; pending_owner_approval (202): an agent's high-risk command waits for its owner (owner_approval)"},
			"command":  ref("TwinCommand"),
			"decision": ref("Decision"), "approval": ref("Approval"),
			"grant":          described(ref("SignedTypedData"), "the CommandGrant the realm signed; an agent's names its owner and its delegation chain (root first), which the gateway checks against the revocation feed"),
			"ack":            ref("Acknowledgement"),
			"owner_approval": described(ref("AgentApproval"), "an agent's command waiting in its owner's approval queue: poll it at /v1/agents/approvals/{id}"),
		}, "status", "command"),
		"CommandDigest": obj(map[string]any{"hash": hashT, "typed_data": ref("TypedData"), "risk": riskT, "needs_step_up": boolT,
			"needs_approval": boolT}, "hash", "typed_data", "risk", "needs_step_up", "needs_approval"),
		"ApprovalAnswer": obj(map[string]any{"approval": ref("Approval"), "command": ref("TwinCommand"), "answer": ref("CommandAnswer")},
			"approval", "command"),
		"Approvals": obj(map[string]any{"approvals": arrayOf(ref("ApprovalAnswer"))}, "approvals"),
		"Twin": obj(map[string]any{"id": strT, "name": strT, "scene": strT, "zone": strT,
			"gateway":   described(addrT, "the address that signs the twin's acknowledgements"),
			"actuators": arrayOf(liveActuator)}, "id", "scene", "zone", "actuators"),
		"Twins": obj(map[string]any{"twins": arrayOf(ref("Twin")), "grant_key": described(addrT, "the address that signs command grants")}, "twins", "grant_key"),
	}
}

// marketSchemas are assets, intents, receipts and checkpoints.
func marketSchemas() map[string]any {
	transfer := obj(map[string]any{"collection": strT, "assetId": strT, "amount": uintT, "from": addrT, "to": addrT, "nonce": uintT, "deadline": uintT},
		"collection", "amount", "from", "to", "nonce", "deadline")
	event := obj(map[string]any{"sequence": intT, "event": strT, "from": addrT, "to": addrT, "digest": hashT, "time": timeT}, "sequence", "event", "to", "time")
	asset := obj(map[string]any{"collection": strT, "item": strT, "owner": addrT, "sequence": intT, "history": arrayOf(event)}, "collection", "item", "owner")
	balance := obj(map[string]any{"collection": strT, "owner": addrT, "balance": uintT, "sequence": intT}, "collection", "owner", "balance")
	address := obj(map[string]any{"address": addrT, "next_nonce": uintT}, "address", "next_nonce")
	return map[string]any{
		"TransferMessage": transfer,
		"Domain":          obj(map[string]any{"name": strT, "version": strT, "chainId": uintT, "verifyingContract": addrT}, "name", "version", "chainId", "verifyingContract"),
		"TypedData": obj(map[string]any{"types": freeForm("EIP-712 type definitions, by type name"), "primaryType": strT, "domain": ref("Domain"),
			"message": freeForm("the primary type's message")}, "types", "primaryType", "domain", "message"),
		"TransferRequest": obj(map[string]any{"intent": ref("TransferMessage"), "signature": sigT, "domain": ref("Domain")}, "intent"),
		"TradeRequest":    obj(map[string]any{"give": ref("TransferMessage"), "take": ref("TransferMessage"), "give_signature": sigT, "take_signature": sigT, "domain": ref("Domain")}, "give", "take"),
		"CancelRequest":   obj(map[string]any{"owner": addrT, "nonceFloor": uintT, "deadline": uintT, "signature": sigT}, "owner", "nonceFloor", "deadline"),
		"LinkRequest":     obj(map[string]any{"wallet": addrT, "deadline": uintT, "signature": sigT}, "wallet"),
		"MintRequest": obj(map[string]any{"collection": strT, "item": described(strT, "unique collections: the new item's id"), "to": addrT,
			"amount": described(uintT, "fungible collections: how much")}, "collection", "to"),
		"Payload": obj(map[string]any{"typed_data": ref("TypedData"), "digest": hashT}, "typed_data", "digest"),
		"Receipt": obj(map[string]any{"receipt": ref("TypedData"), "digest": hashT, "signature": sigT, "signer": addrT,
			"time": timeT, "proof": ref("InclusionProof")}, "receipt", "digest", "signature", "signer", "time"),
		"InclusionProof": described(obj(map[string]any{"checkpoint": ref("TypedData"), "checkpoint_digest": hashT, "checkpoint_signature": sigT,
			"checkpoint_signer": addrT, "leaf_index": intT, "path": arrayOf(hashT)}, "checkpoint", "checkpoint_digest", "checkpoint_signature",
			"checkpoint_signer", "leaf_index", "path"), "with /proof only: the receipt's inclusion in a signed checkpoint"),
		"TransferAnswer": obj(map[string]any{"digest": hashT, "sequence": intT, "receipt": ref("Receipt")}, "digest", "sequence", "receipt"),
		"Sequence":       obj(map[string]any{"sequence": intT}, "sequence"),
		"NonceFloor":     obj(map[string]any{"owner": addrT, "next_nonce": uintT}, "owner", "next_nonce"),
		"Asset":          asset,
		"Balance":        balance,
		"AssetDomain":    obj(map[string]any{"domain": ref("Domain"), "signer": addrT, "chain": strT, "treasury": addrT}, "domain", "signer", "chain", "treasury"),
		"Collections": obj(map[string]any{"collections": arrayOf(obj(map[string]any{"id": strT, "scene": strT, "name": strT, "kind": strT,
			"soulbound": boolT, "decimals": intT}, "id", "kind"))}, "collections"),
		"CollectionPage": obj(map[string]any{"collection": strT, "kind": strT, "items": arrayOf(ref("Asset")), "balances": arrayOf(ref("Balance")),
			"next": described(strT, "pass as after for the next page; \"\" at the end")}, "collection", "kind"),
		"OwnerPage": obj(map[string]any{"owner": addrT, "items": arrayOf(ref("Asset")), "balances": arrayOf(ref("Balance")), "next": strT, "next_nonce": uintT},
			"owner", "items", "balances", "next_nonce"),
		"Wallet":       obj(map[string]any{"avatar": strT, "wallets": arrayOf(ref("Address")), "custodial": ref("Address")}, "avatar", "wallets"),
		"Address":      address,
		"ReceiptChain": obj(map[string]any{"chain": strT, "chains": stringsT, "receipts": arrayOf(ref("Receipt"))}, "chain", "receipts"),
		"Checkpoint": obj(map[string]any{"checkpoint": ref("TypedData"), "digest": hashT, "signature": sigT, "signer": addrT, "time": timeT},
			"checkpoint", "digest", "signature", "signer", "time"),
		"Checkpoints": obj(map[string]any{"chain": strT, "checkpoints": arrayOf(ref("Checkpoint"))}, "chain", "checkpoints"),
		"Signers":     signersSchema(),
	}
}

// apiSchemas is components/schemas.
func apiSchemas() map[string]any {
	out := map[string]any{}
	for _, group := range []map[string]any{webAuthnSchemas(), accountSchemas(), realmSchemas(), twinSchemas(), marketSchemas()} {
		for name, s := range group {
			out[name] = s
		}
	}
	return out
}

// signersSchema is GET /v1/assets/signers's answer in the OpenAPI document.
func signersSchema() map[string]any {
	return obj(map[string]any{
		"self": map[string]any{"type": "string", "description": "the node that answered"},
		"signers": map[string]any{"type": "array", "items": obj(map[string]any{
			"node":    strT,
			"address": addrT,
			"since":   map[string]any{"type": "string", "format": "date-time", "description": "the key did not exist before: nothing it signed is older"},
			"until":   map[string]any{"type": "string", "format": "date-time", "description": "retired keys: the node no longer signed with it from then on"},
			"current": map[string]any{"type": "boolean", "description": "the node signs with it now"},
		}, "node", "address", "since", "current")},
	}, "self", "signers")
}
