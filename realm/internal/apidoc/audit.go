package apidoc

import "github.com/zerorealm/zerorealm/internal/audit"

// The audit routes' parameters and answers.

// auditQueryParams documents GET /v1/audit's parameters for the OpenAPI
// document, one for each that audit.ParseQuery knows (openapi tests check).
func auditQueryParams() []any {
	param := func(name, description string, schema map[string]any) any {
		return map[string]any{"name": name, "in": "query", "required": false, "description": description, "schema": schema}
	}
	str := func(pattern string, maxLength int) map[string]any {
		s := map[string]any{"type": "string", "minLength": 1, "maxLength": maxLength}
		if pattern != "" {
			s["pattern"] = pattern
		}
		return s
	}
	decision := map[string]any{"type": "string", "enum": []string{string(audit.Allow), string(audit.Deny)}}
	when := map[string]any{"type": "string", "format": "date-time"}
	return []any{
		map[string]any{"name": "action", "in": "query", "required": false, "explode": true, "style": "form",
			"description": "only these actions, e.g. CommandActuator; repeat the parameter or separate names with commas (at most 32)",
			"schema":      map[string]any{"type": "array", "items": str("^[A-Za-z][A-Za-z0-9_.-]{0,63}$", 64)}},
		param("decision", "only allows or only denies", decision),
		param("outcome", "older name of decision; if both are given they must agree", decision),
		param("actor", "only this actor's decisions (an avatar id, operator, gateway, agent or the realm); without an audit role, the caller's own id or an agent it delegated to", str("", 512)),
		param("resource", `only decisions on this resource, e.g. Actuator::"press-1/ram"`, str("", 512)),
		param("node", "only this realm node's chain", str("^[A-Za-z0-9_-]{1,64}$", 64)),
		param("since", "only events at or after this time (RFC 3339)", when),
		param("until", "only events before this time (RFC 3339); after since", when),
		param("before", "the next of the previous page: only events stored before it. A place in the AUDIT stream, \"<seq>:<line>\", the same on every node and stable while events arrive", str("^[1-9][0-9]*:(0|[1-9][0-9]*)$", 32)),
		param("limit", "events per page", map[string]any{"type": "integer", "minimum": 1, "maximum": audit.MaxLimit, "default": audit.DefaultLimit}),
	}
}

// auditPageSchema is GET /v1/audit's answer in the OpenAPI document.
func auditPageSchema() map[string]any {
	event := map[string]any{"type": "object", "properties": map[string]any{
		"id": strT, "time": map[string]any{"type": "string", "format": "date-time"}, "node": strT,
		"index": map[string]any{"type": "integer", "description": "position in the node's chain, from 1, gapless"},
		"prev":  map[string]any{"type": "string", "description": "hex SHA-256 of the previous event of the chain as stored"},
		"actor": strT, "action": strT, "resource": strT,
		"outcome":  map[string]any{"type": "string", "enum": []string{string(audit.Allow), string(audit.Deny)}},
		"reasons":  map[string]any{"type": "array", "items": strT},
		"policies": map[string]any{"type": "array", "items": strT},
		"signals":  map[string]any{"type": "object"},
	}}
	return map[string]any{"type": "object", "required": []string{"events", "truncated", "scope"}, "properties": map[string]any{
		"events": map[string]any{"type": "array", "items": event, "description": "newest first, in the order the AUDIT stream stored them"},
		"next":   map[string]any{"type": "string", "description": "pass as before for the next, older page; absent when no older event matches"},
		"scope": map[string]any{"type": "string", "enum": []string{"all", "own", "agent"}, "description": "all: the caller holds an audit role and reads every event; " +
			"own: the caller reads only the events it is the actor of (the actor filter is set to it; another actor is refused with 403); " +
			"agent: the actor filter names an agent the caller delegated to, whose events the caller reads"},
		"truncated": map[string]any{"type": "boolean", "description": "the node's view of recent events ended before the page was full: " +
			"older matching events may be in the stream (audit/verify walks them) but are not listed"},
	}}
}

// auditNodeParam documents ?node= of the transparency-log routes.
func auditNodeParam(required bool) any {
	return map[string]any{"name": "node", "in": "query", "required": required, "description": "a realm node's chain",
		"schema": map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
}

func countParam(name, description string) any {
	return map[string]any{"name": name, "in": "query", "required": true, "description": description,
		"schema": map[string]any{"type": "integer", "minimum": 1}}
}

var base64T = map[string]any{"type": "string", "format": "byte"}

func auditServedSchema() map[string]any {
	return obj(map[string]any{
		"node": strT, "origin": map[string]any{"type": "string", "description": "<rp-id>/zerorealm/audit/<node>"},
		"size": map[string]any{"type": "integer"}, "root": base64T,
		"key":        map[string]any{"type": "string", "description": "the node's Ed25519 note verifier key (<name>+<hash>+<base64>)"},
		"checkpoint": map[string]any{"type": "string", "description": "the C2SP signed note: checkpoint text, the node's signature, then its witnesses' cosignature/v1 lines"},
		"cosigners":  map[string]any{"type": "array", "items": strT, "description": "the witness nodes whose cosignature verifies"},
	}, "node", "origin", "size", "root", "key", "checkpoint", "cosigners")
}

func auditCheckpointsSchema() map[string]any {
	return obj(map[string]any{"checkpoints": map[string]any{"type": "array", "items": auditServedSchema(),
		"description": "save one entry as a file to hold the log to it later (zerorealm audit verify --checkpoint)"}}, "checkpoints")
}

func auditProofSchema() map[string]any {
	return obj(map[string]any{"node": strT, "index": map[string]any{"type": "integer"}, "size": map[string]any{"type": "integer"},
		"event": map[string]any{"type": "string", "description": "inclusion only: the event exactly as stored (the leaf; compact JSON), while the node's view of recent events holds it"},
		"from":  map[string]any{"type": "integer"}, "to": map[string]any{"type": "integer"},
		"proof": map[string]any{"type": "array", "items": base64T, "description": "RFC 6962 hashes, as golang.org/x/mod/sumdb/tlog orders them"}}, "node", "proof")
}

func auditVerifySchema() map[string]any {
	kinds := []string{audit.KindDeleted, audit.KindInserted, audit.KindEdited, audit.KindInvalid, audit.KindPurged, audit.KindTruncated,
		audit.KindRewritten, audit.KindRehashed, audit.KindVanished, audit.KindBadAnchor, audit.KindRefused, audit.KindCPsRemoved}
	brk := obj(map[string]any{"seq": map[string]any{"type": "integer"}, "index": map[string]any{"type": "integer"},
		"kind": map[string]any{"type": "string", "enum": kinds}, "reason": strT})
	chain := obj(map[string]any{
		"node": strT, "events": map[string]any{"type": "integer", "description": "events that verified before the break"},
		"blocks": map[string]any{"type": "integer"}, "head": strT, "break": brk,
		"size": map[string]any{"type": "integer", "description": "events stored"}, "root": base64T,
		"checkpoint": obj(map[string]any{"size": map[string]any{"type": "integer"}, "root": base64T,
			"cosigners": map[string]any{"type": "array", "items": strT}, "matches": map[string]any{"type": "boolean"}}),
	})
	finding := obj(map[string]any{"node": strT, "kind": map[string]any{"type": "string", "enum": kinds},
		"index": map[string]any{"type": "integer", "description": "the event concerned, from 1"},
		"size":  map[string]any{"type": "integer", "description": "the checkpoint size concerned"}, "detail": strT}, "node", "kind", "detail")
	return obj(map[string]any{"ok": map[string]any{"type": "boolean", "description": "true only without findings"},
		"chains":   map[string]any{"type": "array", "items": chain},
		"findings": map[string]any{"type": "array", "items": finding}}, "ok", "chains", "findings")
}
