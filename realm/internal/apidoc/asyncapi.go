package apidoc

import (
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// The AsyncAPI 3 document of the realm WebSocket (GET /v1/realm), served
// at /v1/asyncapi.json beside the OpenAPI document. It says what
// clients/PROTOCOL.md says of the socket, in a form code generators read:
// every message each way, with its payload, and the close codes.

// liveCloseCodes are the codes the realm closes a realm WebSocket with,
// and what a client does about each. AsyncAPI has no field for them, so
// they go in the channel's description and an x-close-codes extension.
var liveCloseCodes = []map[string]any{
	{"code": 1001, "meaning": "the realm node is stopping", "reconnect": true},
	{"code": 1007, "meaning": "a text message was not UTF-8 or named a member twice", "reconnect": false},
	{"code": 1009, "meaning": "a message was larger than 16 KiB", "reconnect": false},
	{"code": 1011, "meaning": "the realm failed reading the session's motion", "reconnect": true},
	{"code": 4401, "meaning": "the session was revoked or expired (signed out, cloned passkey, lifetime reached, idle timeout), or an agent's delegation ended (revoked, suspended, expired); sign in again", "reconnect": false},
	{"code": 4408, "meaning": "the client did not read its messages in time", "reconnect": true},
	{"code": 4409, "meaning": "the same session connected again, through this node or another; do not reconnect on your own, ask the person", "reconnect": false},
	{"code": 4429, "meaning": "the client kept sending over 100 control messages a second beyond the limit", "reconnect": false},
}

// typed is a message payload: an object with a fixed type member.
func typed(messageType string, props map[string]any, required ...string) map[string]any {
	all := map[string]any{"type": map[string]any{"type": "string", "const": messageType}}
	for k, v := range props {
		all[k] = v
	}
	return obj(all, append([]string{"type"}, required...)...)
}

func asyncRef(kind, name string) map[string]any {
	return map[string]any{"$ref": "#/components/" + kind + "/" + name}
}

func buildAsyncAPI(f Facts) map[string]any {
	pose := obj(map[string]any{
		"pos": map[string]any{"type": "array", "items": numT, "minItems": 3, "maxItems": 3, "description": "metres, within 1e5"},
		"rot": map[string]any{"type": "array", "items": numT, "minItems": 4, "maxItems": 4, "description": "unit quaternion x, y, z, w"},
	}, "pos", "rot")
	// What a member is, set by the realm on every join and snapshot.
	marks := map[string]any{
		"kind": map[string]any{"type": "string", "enum": []string{"person", "agent"},
			"description": "set on joins and in snapshots: a person (avatar is its id, name its handle) or an AI agent acting for a person (avatar and agent are the agent's id)"},
		"agent":        described(strT, "an agent's id (ag_...), the same as avatar"),
		"on_behalf_of": asyncRef("schemas", "OnBehalfOf"),
	}
	onBehalfOf := obj(map[string]any{
		"avatar": described(strT, "the owner's avatar id"), "handle": described(strT, "the owner's handle"),
		"depth": described(intT, "1 for the owner's own agent; more for a sub-agent"),
		"via":   described(strT, "a sub-agent's: the agent that delegated to it"),
	}, "avatar", "handle", "depth")
	withMarks := func(props map[string]any) map[string]any {
		for k, v := range marks {
			props[k] = v
		}
		return props
	}
	member := obj(withMarks(map[string]any{"avatar": strT, "name": strT, "zone": strT}), "avatar", "name", "zone", "kind")
	presenceEvent := obj(withMarks(map[string]any{"avatar": strT, "name": described(strT, "set on joins"),
		"event": map[string]any{"type": "string", "enum": []string{"join", "leave", "zone"}},
		"zone":  described(strT, "\"\" for none")}), "avatar", "event", "zone")
	avatarPoseSchema := obj(map[string]any{"avatar": strT, "head": asyncRef("schemas", "Pose"),
		"left": asyncRef("schemas", "Pose"), "right": asyncRef("schemas", "Pose")}, "avatar", "head")
	account := accountSchemas()
	schemas := map[string]any{
		"Pose": pose, "Member": member, "PresenceEvent": presenceEvent, "OnBehalfOf": onBehalfOf, "AvatarPose": avatarPoseSchema,
		"Avatar": account["Avatar"], "Session": account["Session"], "Trust": account["Trust"],
	}
	// The Avatar schema refers to no other; Trust and Session neither: the
	// subset copied here stands alone.
	fromRealm := map[string]map[string]any{
		"hello": {"summary": "The first message: a person's session, avatar and trust; an agent's agent instead", "payload": typed("hello", map[string]any{
			"v": map[string]any{"type": "integer", "const": 1}, "session": asyncRef("schemas", "Session"),
			"avatar": asyncRef("schemas", "Avatar"), "trust": asyncRef("schemas", "Trust"),
			"agent": obj(map[string]any{"id": strT, "delegation": described(strT, "the leaf delegation: one connection each"),
				"chain": described(arrayOf(strT), "the agents of the chain, the owner's own first"), "on_behalf_of": asyncRef("schemas", "OnBehalfOf"),
				"expires_at": timeT}, "id", "delegation", "chain", "on_behalf_of", "expires_at")}, "v")},
		"trust": {"summary": "The session's trust changed state", "payload": typed("trust", map[string]any{"trust": asyncRef("schemas", "Trust")}, "trust")},
		"pong":  {"summary": "The answer to a ping", "payload": typed("pong", nil)},
		"passkeyAdded": {"summary": "A passkey was added to the avatar, through any session and node; one the person did not add means the session token was taken",
			"payload": typed("passkey-added", map[string]any{"passkey": obj(map[string]any{"id": b64urlT, "name": strT, "created": timeT,
				"attestation_format": strT, "attested": boolT, "synced": boolT}, "id"), "at": timeT}, "passkey", "at")},
		"agentApproval": {"summary": "An action one of the avatar's agents asked for changed state in the owner's approval queue, on any node: enqueued (pending), approved, done, failed, rejected, cancelled or expired",
			"payload": typed("agent-approval", map[string]any{"approval": freeForm("the action, as GET /v1/agents/approvals/{id} answers it (the OpenAPI schema AgentApproval)"), "at": timeT}, "approval", "at")},
		"webrtcAnswer": {"summary": "The answer to the client's WebRTC offer", "payload": typed("webrtc.answer", map[string]any{"sdp": strT}, "sdp")},
		"xrScore": {"summary": "The verdict on the session's motion", "payload": typed("xr.score", map[string]any{"xr": obj(map[string]any{
			"at": timeT, "seq": intT, "time_us": intT, "probability": numT, "state": strT, "score": numT}, "at", "seq", "probability", "state", "score")}, "xr")},
		"xrStatus": {"summary": "The session's XR frame counts and enrollment", "payload": typed("xr.status", map[string]any{"xr": obj(map[string]any{
			"at": timeT, "transport": strT, "frames_accepted": intT,
			"frames_rejected": map[string]any{"type": "object", "additionalProperties": intT, "description": "rejected frames by reason"},
			"enrollment": described(map[string]any{"type": "string", "enum": []string{"not-enrolled", "enrolling", "enrolled", "unknown"}},
				"unknown: the realm could not read whether the avatar has a biometric template (its store did not answer in time); it counts and checks the frames, scores nothing, and reads again until it knows"),
			"enrollment_progress": described(map[string]any{"type": "number", "minimum": 0, "maximum": 1},
				"while enrolling: the share of the motion collected; it goes on where it stopped when the session's stream comes back to the same node")}, "at", "transport", "frames_accepted", "frames_rejected", "enrollment")}, "xr")},
		"joined": {"summary": "The answer to a join: the scene's other members on every realm node", "payload": typed("joined", map[string]any{
			"scene": strT, "members": arrayOf(asyncRef("schemas", "Member"))}, "scene", "members")},
		"presence": {"summary": "Members that joined, left or changed zone in one tick (20 Hz): one event at the top level, several in events",
			"payload": typed("presence", withMarks(map[string]any{"scene": strT, "avatar": strT, "name": strT,
				"event": map[string]any{"type": "string", "enum": []string{"join", "leave", "zone"}}, "zone": strT,
				"events": arrayOf(asyncRef("schemas", "PresenceEvent"))}), "scene")},
		"poses": {"summary": "The other members' newest poses, at most 20 times a second, nearest first by interest", "payload": typed("poses", map[string]any{
			"scene": strT, "poses": arrayOf(asyncRef("schemas", "AvatarPose"))}, "scene", "poses")},
		"error": {"summary": "A message was refused; the connection stays", "payload": typed("error", map[string]any{
			"error": described(strT, "for people; repeats reason when there is one"),
			"code": map[string]any{"type": "string", "enum": f.LiveErrorCodes,
				"description": "set on errors about scenes and limits: what a client branches on"},
			"reason":      strT,
			"retry_after": described(intT, "with node-busy: whole seconds to wait before streaming XR frames or offering WebRTC again")}, "error")},
	}
	fromClient := map[string]map[string]any{
		"ping": {"summary": "Keeps the session in use; answered with pong", "payload": typed("ping", nil)},
		"join": {"summary": "Join a scene (decided: JoinScene; for an agent, its delegation first); one scene per connection", "payload": typed("join", map[string]any{"scene": strT,
			"name": described(strT, "an agent's: the name it is shown by, 1 to 64 characters; a person's is ignored")}, "scene")},
		"leave": {"summary": "Leave the scene", "payload": typed("leave", nil)},
		"pose": {"summary": "Where the avatar is, for clients that stream no XR frames; a new zone is decided (EnterZone)", "payload": typed("pose", map[string]any{
			"head": asyncRef("schemas", "Pose"), "left": asyncRef("schemas", "Pose"), "right": asyncRef("schemas", "Pose")}, "head")},
		"webrtcOffer": {"summary": "WebRTC signalling: the client's offer", "payload": typed("webrtc.offer", map[string]any{"sdp": strT}, "sdp")},
		"webrtcCandidate": {"summary": "WebRTC signalling: an ICE candidate (RTCIceCandidateInit), null when the client has no more",
			"payload": typed("webrtc.candidate", map[string]any{"candidate": map[string]any{"type": []string{"object", "null"}, "properties": map[string]any{
				"candidate": strT, "sdpMid": strT, "sdpMLineIndex": intT, "usernameFragment": strT}}}, "candidate")},
		"xrFrame": {"summary": "An XR frame (binary, format v1 in clients/PROTOCOL.md) where WebRTC is not available",
			"contentType": "application/octet-stream", "payload": map[string]any{"type": "string", "format": "binary"}},
	}
	messages := map[string]any{}
	channelMessages := map[string]any{}
	operation := func(action string, set map[string]map[string]any) map[string]any {
		var refs []any
		for _, name := range slices.Sorted(maps.Keys(set)) {
			m := set[name]
			m["name"] = name
			if _, ok := m["contentType"]; !ok {
				m["contentType"] = "application/json"
			}
			messages[name] = m
			channelMessages[name] = asyncRef("messages", name)
			refs = append(refs, map[string]any{"$ref": "#/channels/realm/messages/" + name})
		}
		return map[string]any{"action": action, "channel": map[string]any{"$ref": "#/channels/realm"}, "messages": refs}
	}
	operations := map[string]any{
		"receiveFromRealm": described(operation("receive", fromRealm), "What the realm sends a client"),
		"sendToRealm": described(operation("send", fromClient),
			"What a client sends: text messages of at most 16 KiB, at most 50 control messages a second with a burst of 20"),
	}
	closing := "Close codes:"
	for _, c := range liveCloseCodes {
		closing += "\n- " + strconv.Itoa(c["code"].(int)) + ": " + c["meaning"].(string)
	}
	return map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{"title": "ZeroRealm realm WebSocket", "version": "1",
			"description": "The realm WebSocket, GET /v1/realm: presence, poses, trust and WebRTC signalling. Authenticated like any request " +
				"(the session cookie from a browser, Authorization: Bearer elsewhere; an agent's Authorization: DPoP <delegation> with a DPoP proof for GET and the realm's https URL of /v1/realm); a browser's Origin must be the realm's. " +
				"Messages are JSON text frames with a type; XR frames are binary."},
		"defaultContentType": "application/json",
		"servers": map[string]any{"realm": map[string]any{"host": "{host}", "protocol": "ws",
			"description": "a realm node: wss behind TLS, ws on a plain-HTTP development realm (the default --listen)",
			"variables":   map[string]any{"host": map[string]any{"default": "localhost:8080", "description": "the realm's host and port"}},
			"security":    []any{asyncRef("securitySchemes", "bearer"), asyncRef("securitySchemes", "cookie"), asyncRef("securitySchemes", "dpop")}}},
		"channels": map[string]any{"realm": map[string]any{
			"address": "/v1/realm", "title": "The realm WebSocket",
			"description":   "One per session: a newer connection of the same session closes the older with 4409. " + closing,
			"messages":      channelMessages,
			"bindings":      map[string]any{"ws": map[string]any{"method": "GET", "bindingVersion": "0.1.0"}},
			"x-close-codes": liveCloseCodes,
		}},
		"operations": operations,
		"components": map[string]any{
			"messages": messages,
			"schemas":  schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "the token a WebAuthn finish call answers with"},
				"cookie": map[string]any{"type": "httpApiKey", "in": "cookie", "name": edge.SessionCookie, "description": "the web console's HttpOnly session"},
				"dpop": map[string]any{"type": "httpApiKey", "in": "header", "name": "Authorization",
					"description": "an agent's: Authorization: DPoP <delegation token> with a DPoP header carrying an RFC 9449 proof (EdDSA, htm GET, htu the realm's public URL and /v1/realm) by the key the delegation names; see docs/agents.md"},
			},
		},
	}
}

// ServeAsyncAPI answers the AsyncAPI 3 document of the realm WebSocket.
func (d *Docs) ServeAsyncAPI(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, d.asyncAPI)
}
