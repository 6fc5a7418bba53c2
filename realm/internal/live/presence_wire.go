package live

import (
	"encoding/json"
	"math"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
)

// Codes of the error messages about scenes, presence and limits, which
// clients branch on; the reason is for people.
const (
	codeInvalid      = "invalid"       // the message was malformed or of an unknown type
	codeDenied       = "denied"        // the scene's policies refused: see the reason
	codeUnknownScene = "unknown-scene" // no scene has the id
	codeNotJoined    = "not-joined"    // the message needs a joined scene
	codeJoined       = "already-joined"
	codeRateLimited  = "rate-limited" // too many control messages: some were dropped
	// codeNodeBusy: the node opened no new XR stream (it is behind its
	// streams or at its cap); retry_after says when to try again.
	codeNodeBusy = "node-busy"
)

// RefusalCodes lists the codes an error message may carry, for the
// protocol's documents.
func RefusalCodes() []string {
	return []string{codeInvalid, codeDenied, codeUnknownScene, codeNotJoined, codeJoined, codeRateLimited, codeNodeBusy}
}

// Bounds of a JSON pose: positions are metres in scene coordinates, far
// beyond any scene; rotations are unit quaternions, with slack for
// rounding.
const (
	maxPoseCoord = 1e5
	maxRotComp   = 1.5
)

// poseJSON is one tracked pose on the wire.
type poseJSON struct {
	Pos [3]float64 `json:"pos"`
	Rot [4]float64 `json:"rot"`
}

// avatarPose is the newest pose of one avatar, as poses messages carry it.
type avatarPose struct {
	Avatar string    `json:"avatar"`
	Head   poseJSON  `json:"head"`
	Left   *poseJSON `json:"left,omitempty"`
	Right  *poseJSON `json:"right,omitempty"`
}

// Member is a scene member as joined and presence messages show it.
type Member struct {
	Avatar string `json:"avatar"`
	Name   string `json:"name"`
	Zone   string `json:"zone"`
	Mark
}

// Kinds of scene member.
const (
	kindPerson = "person"
	kindAgent  = "agent"
)

// Mark says what a member is, set by the realm and never by the
// member: a person, or an agent acting for its owner. It travels with a
// member's join (in presence messages, joined snapshots and between
// nodes), so that nobody can take an agent for a person, nor an agent
// for another owner's. For an agent, the member's avatar field is the
// agent's id: the key its events and poses carry.
type Mark struct {
	Kind       string      `json:"kind,omitempty"`
	Agent      string      `json:"agent,omitempty"`
	OnBehalfOf *OnBehalfOf `json:"on_behalf_of,omitempty"`
}

// OnBehalfOf is whose authority an agent in a scene acts with: its
// owner, how deep in the owner's delegation chain it stands (1 for the
// owner's own agent) and, for a sub-agent, the agent that delegated to it.
type OnBehalfOf struct {
	Avatar string `json:"avatar"`
	Handle string `json:"handle"`
	Depth  int    `json:"depth"`
	Via    string `json:"via,omitempty"`
}

// joinedMessage answers a join with the scene's other members.
type joinedMessage struct {
	Type    string   `json:"type"`
	Scene   string   `json:"scene"`
	Members []Member `json:"members"`
}

// presenceEventWire is one join, leave or zone change of a member. A
// presence message of one event carries its fields at the top level, one
// of several in an events list (presence_fanout.go).
type presenceEventWire struct {
	Avatar string `json:"avatar"`
	Name   string `json:"name,omitempty"`
	Event  string `json:"event"`
	Zone   string `json:"zone"`
	// Mark is set on a join.
	Mark
}

// posesMessage is how another node's poses arrive: the newest pose of each
// of its members that moved in one tick.
type posesMessage struct {
	Type  string       `json:"type"`
	Scene string       `json:"scene"`
	Poses []avatarPose `json:"poses"`
}

// Presence events.
const (
	presenceJoin  = "join"
	presenceLeave = "leave"
	presenceZone  = "zone"
)

// refusalMessage is an error with a code; error repeats the reason for
// clients that only read error.
type refusalMessage struct {
	Type   string `json:"type"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Error  string `json:"error"`
	// RetryAfter is in seconds, for node-busy.
	RetryAfter int `json:"retry_after,omitempty"`
}

func encodeJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// refuse tells the client a message was refused, with a code; throttled
// refusals go out at most once per liveErrorEvery, like pushError's.
func (c *socket) refuse(code, reason string, throttled bool) {
	if throttled && !c.errorDue() {
		return
	}
	c.push(encodeJSON(refusalMessage{Type: "error", Code: code, Reason: reason, Error: reason}))
}

// refuseBusy tells the client the node opened no new XR stream for it,
// and when to try again.
func (c *socket) refuseBusy(b *xr.BusyError, throttled bool) {
	if throttled && !c.errorDue() {
		return
	}
	c.push(encodeJSON(refusalMessage{Type: "error", Code: codeNodeBusy, Reason: b.Reason, Error: b.Reason, RetryAfter: b.RetryAfterSeconds()}))
}

// parsePose reads the head, left and right fields of a pose message. The
// head is required; a hand that is absent or null is not tracked.
func parsePose(head, left, right json.RawMessage) (avatarPose, error) {
	var p avatarPose
	if len(head) == 0 || string(head) == "null" {
		return p, refusedMessage(`pose needs head, {"pos":[x,y,z],"rot":[x,y,z,w]}`)
	}
	h, err := parsePoseField("head", head)
	if err != nil {
		return p, err
	}
	p.Head = *h
	if p.Left, err = parsePoseField("left", left); err != nil {
		return p, err
	}
	if p.Right, err = parsePoseField("right", right); err != nil {
		return p, err
	}
	return p, nil
}

func parsePoseField(name string, raw json.RawMessage) (*poseJSON, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v struct {
		Pos []float64 `json:"pos"`
		Rot []float64 `json:"rot"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.Pos) != 3 || len(v.Rot) != 4 {
		return nil, refusedMessage("pose %s needs pos, three numbers, and rot, four numbers (a quaternion x, y, z, w)", name)
	}
	var p poseJSON
	copy(p.Pos[:], v.Pos)
	copy(p.Rot[:], v.Rot)
	if !p.within() {
		return nil, refusedMessage("pose %s is out of range: positions within %g m, rotation a unit quaternion", name, float64(maxPoseCoord))
	}
	return &p, nil
}

// within reports whether the pose is finite and in range, so that it
// marshals and means something.
func (p poseJSON) within() bool {
	for _, v := range p.Pos {
		if math.IsNaN(v) || math.Abs(v) > maxPoseCoord {
			return false
		}
	}
	for _, v := range p.Rot {
		if math.IsNaN(v) || math.Abs(v) > maxRotComp {
			return false
		}
	}
	return true
}

// frameBodyPose converts a tracked biometrics pose; ok is false for an
// untracked or out-of-range one.
func frameBodyPose(bp biometrics.Pose) (*poseJSON, bool) {
	if !bp.Tracked {
		return nil, false
	}
	var p poseJSON
	for i, v := range bp.Pos {
		p.Pos[i] = float64(v)
	}
	for i, v := range bp.Rot {
		p.Rot[i] = float64(v)
	}
	if !p.within() {
		return nil, false
	}
	return &p, true
}

// framePose is the pose of an XR frame: ok is false when its head is not
// tracked, since the head is where the avatar stands.
func framePose(f biometrics.Frame) (avatarPose, bool) {
	h, ok := frameBodyPose(f.Head)
	if !ok {
		return avatarPose{}, false
	}
	p := avatarPose{Head: *h}
	p.Left, _ = frameBodyPose(f.Left)
	p.Right, _ = frameBodyPose(f.Right)
	return p, true
}
