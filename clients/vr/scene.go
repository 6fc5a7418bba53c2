package vr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Presence events: another member joined the scene, left it, or moved
// into another zone.
const (
	PresenceJoin  = "join"
	PresenceLeave = "leave"
	PresenceZone  = "zone"
)

// Codes of the realm's refusals about scenes and limits.
const (
	CodeInvalid       = "invalid"
	CodeDenied        = "denied"
	CodeUnknownScene  = "unknown-scene"
	CodeNotJoined     = "not-joined"
	CodeAlreadyJoined = "already-joined"
	CodeRateLimited   = "rate-limited"
	// CodeNodeBusy: the node opened no XR stream for the session (it is
	// behind its streams, or at its cap); the error's retry_after says
	// when to try again.
	CodeNodeBusy = "node-busy"
)

// maxSceneID is the longest scene id the realm reads in a join.
const maxSceneID = 64

// defaultJoinTimeout bounds a Join whose ctx has no deadline: the realm
// decides a join within 5s, audit write included.
const defaultJoinTimeout = 10 * time.Second

var (
	// ErrDenied matches a RefusalError of the scene's policies: joining the
	// scene, or entering a zone.
	ErrDenied = errors.New("vr: denied by the scene's policies")
	// ErrUnknownScene matches a RefusalError for a scene id the realm does
	// not serve.
	ErrUnknownScene = errors.New("vr: unknown scene")
	// ErrAlreadyJoined matches a RefusalError for a join while the
	// connection is in a scene: Leave first.
	ErrAlreadyJoined = errors.New("vr: already in a scene")
	// ErrNotJoined matches a RefusalError for a pose without a joined scene.
	ErrNotJoined = errors.New("vr: not in a scene")
	// ErrRateLimited matches a RefusalError for control messages beyond the
	// realm's limit of 50 a second (burst 20).
	ErrRateLimited = errors.New("vr: rate limited by the realm")
	// ErrNodeBusy matches a RefusalError of a node that opened no XR
	// stream for the session (its first frames or its WebRTC offer): wait
	// its RetryAfter, then stream or dial again, here or on another node.
	ErrNodeBusy = errors.New("vr: the realm node is busy")
)

// RefusalError is the realm's refusal of a control message: Code is one of
// the Code constants, Reason is for people.
type RefusalError struct {
	Code   string
	Reason string
	// RetryAfter is when to try again, with CodeNodeBusy.
	RetryAfter time.Duration
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("vr: the realm refused (%s): %s", e.Code, e.Reason)
}

// Is makes errors.Is match the sentinel of the refusal's code.
func (e *RefusalError) Is(target error) bool {
	switch e.Code {
	case CodeDenied:
		return target == ErrDenied
	case CodeUnknownScene:
		return target == ErrUnknownScene
	case CodeAlreadyJoined:
		return target == ErrAlreadyJoined
	case CodeNotJoined:
		return target == ErrNotJoined
	case CodeRateLimited:
		return target == ErrRateLimited
	case CodeNodeBusy:
		return target == ErrNodeBusy
	}
	return false
}

// Member is another avatar in the scene and the zone it stands in ("" for
// none), marked as what it is.
type Member struct {
	Avatar string `json:"avatar"`
	Name   string `json:"name"`
	Zone   string `json:"zone"`
	Mark
}

// Kinds of scene member (Mark.Kind).
const (
	KindPerson = "person"
	KindAgent  = "agent"
)

// Mark is what a member is, set by the realm on every join and snapshot,
// never by the member: a person, or an AI agent acting for a person (then
// Avatar and Agent are the agent's id, and OnBehalfOf names its owner).
// Show an agent as one, with its owner.
type Mark struct {
	Kind       string      `json:"kind,omitempty"`
	Agent      string      `json:"agent,omitempty"`
	OnBehalfOf *OnBehalfOf `json:"on_behalf_of,omitempty"`
}

// OnBehalfOf is whose authority an agent acts with: its owner's avatar id
// and handle, its depth in the owner's delegation chain (1 for the owner's
// own agent) and, for a sub-agent, the agent that delegated to it.
type OnBehalfOf struct {
	Avatar string `json:"avatar"`
	Handle string `json:"handle"`
	Depth  int    `json:"depth"`
	Via    string `json:"via,omitempty"`
}

// Joined is the realm's answer to a join: the scene's other members, on
// every realm node.
type Joined struct {
	Scene   string   `json:"scene"`
	Members []Member `json:"members"`
}

// Presence is another member joining, leaving or moving into a zone.
// Name and Mark are set on joins only.
type Presence struct {
	Scene  string `json:"scene"`
	Avatar string `json:"avatar"`
	Name   string `json:"name"`
	Event  string `json:"event"`
	Zone   string `json:"zone"`
	Mark
}

// BodyPose is where an avatar is: its head and both hands. Hands whose
// Tracked is false are not sent, and arrive untracked when absent.
type BodyPose struct {
	Head  Pose
	Left  Pose
	Right Pose
}

// MemberPose is one member's newest pose.
type MemberPose struct {
	Avatar string
	BodyPose
}

// Poses is the newest poses of the scene's members that moved since the
// previous update; the realm sends at most 20 a second. In a crowded scene
// it holds the nearest members' poses at every update and the farther
// ones' less often, head only (clients/PROTOCOL.md, interest).
type Poses struct {
	Scene string
	Poses []MemberPose
}

// poseWire is one pose as JSON carries it. Slices, not arrays, so that a
// pose with too few or too many numbers is refused instead of padded.
type poseWire struct {
	Pos []float64 `json:"pos"`
	Rot []float64 `json:"rot"`
}

type memberPoseWire struct {
	Avatar string    `json:"avatar"`
	Head   *poseWire `json:"head"`
	Left   *poseWire `json:"left"`
	Right  *poseWire `json:"right"`
}

// sceneMessage is the payload of joined, presence and poses messages. It
// is read apart from realmMessage because "avatar" is a string here and an
// object in the hello.
type sceneMessage struct {
	Scene   string   `json:"scene"`
	Members []Member `json:"members"`
	Avatar  string   `json:"avatar"`
	Name    string   `json:"name"`
	Event   string   `json:"event"`
	Zone    string   `json:"zone"`
	Mark
	Events []presenceWire   `json:"events"`
	Poses  []memberPoseWire `json:"poses"`
}

// presenceWire is one event of a presence message with several.
type presenceWire struct {
	Avatar string `json:"avatar"`
	Name   string `json:"name"`
	Event  string `json:"event"`
	Zone   string `json:"zone"`
	Mark
}

// checkPresence refuses an event the protocol does not have.
func checkPresence(p Presence) error {
	if p.Avatar == "" {
		return errors.New("vr: presence without an avatar")
	}
	switch p.Event {
	case PresenceJoin, PresenceLeave, PresenceZone:
		return nil
	}
	return fmt.Errorf("vr: presence event %q: want join, leave or zone", p.Event)
}

// parseSceneMessage fills m's joined, presence or poses payload from data.
func parseSceneMessage(m *realmMessage, data []byte) error {
	var s sceneMessage
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("vr: %s: %w", m.Type, err)
	}
	if s.Scene == "" {
		return fmt.Errorf("vr: %s without a scene", m.Type)
	}
	switch m.Type {
	case "joined":
		for i, mb := range s.Members {
			if mb.Avatar == "" {
				return fmt.Errorf("vr: joined: member %d without an avatar", i)
			}
		}
		m.joined = &Joined{Scene: s.Scene, Members: s.Members}
	case "presence":
		// One event at the top level, or the events of one realm tick in
		// a list, in the order they happened.
		if s.Events == nil {
			p := Presence{Scene: s.Scene, Avatar: s.Avatar, Name: s.Name, Event: s.Event, Zone: s.Zone, Mark: s.Mark}
			if err := checkPresence(p); err != nil {
				return err
			}
			m.presence = []Presence{p}
			break
		}
		if s.Avatar != "" {
			return errors.New("vr: presence with both an avatar and events")
		}
		m.presence = make([]Presence, len(s.Events))
		for i, ev := range s.Events {
			m.presence[i] = Presence{Scene: s.Scene, Avatar: ev.Avatar, Name: ev.Name, Event: ev.Event, Zone: ev.Zone, Mark: ev.Mark}
			if err := checkPresence(m.presence[i]); err != nil {
				return fmt.Errorf("%w (event %d)", err, i)
			}
		}
	case "poses":
		p := &Poses{Scene: s.Scene, Poses: make([]MemberPose, len(s.Poses))}
		for i, w := range s.Poses {
			if w.Avatar == "" {
				return fmt.Errorf("vr: poses: pose %d without an avatar", i)
			}
			if w.Head == nil {
				return fmt.Errorf("vr: poses: pose %d without a head", i)
			}
			mp := &p.Poses[i]
			mp.Avatar = w.Avatar
			for _, part := range []struct {
				name string
				wire *poseWire
				dst  *Pose
			}{{"head", w.Head, &mp.Head}, {"left", w.Left, &mp.Left}, {"right", w.Right, &mp.Right}} {
				if part.wire == nil {
					continue
				}
				if err := part.wire.decode(part.dst); err != nil {
					return fmt.Errorf("vr: poses: pose %d %s: %w", i, part.name, err)
				}
			}
		}
		m.poses = p
	}
	return nil
}

// decode converts a wire pose to the SDK's float32 pose, which is what
// engines render with; a number beyond float32 would become infinite.
func (w *poseWire) decode(dst *Pose) error {
	if len(w.Pos) != 3 || len(w.Rot) != 4 {
		return fmt.Errorf("want pos of 3 numbers and rot of 4, got %d and %d", len(w.Pos), len(w.Rot))
	}
	p := Pose{Tracked: true}
	for i, v := range w.Pos {
		p.Pos[i] = float32(v)
	}
	for i, v := range w.Rot {
		p.Rot[i] = float32(v)
	}
	for _, v := range w.Pos {
		if math.IsInf(float64(float32(v)), 0) {
			return errors.New("a number is out of range")
		}
	}
	for _, v := range w.Rot {
		if math.IsInf(float64(float32(v)), 0) {
			return errors.New("a number is out of range")
		}
	}
	*dst = p
	return nil
}

// poseMessage is a pose as the client sends it; untracked hands are
// absent.
type poseMessage struct {
	Type  string   `json:"type"`
	Head  poseOut  `json:"head"`
	Left  *poseOut `json:"left,omitempty"`
	Right *poseOut `json:"right,omitempty"`
}

type poseOut struct {
	Pos [3]float32 `json:"pos"`
	Rot [4]float32 `json:"rot"`
}

func newPoseMessage(p BodyPose) poseMessage {
	return poseMessage{Type: "pose", Head: poseOut{Pos: p.Head.Pos, Rot: p.Head.Rot}, Left: optionalPose(p.Left), Right: optionalPose(p.Right)}
}

func optionalPose(p Pose) *poseOut {
	if !p.Tracked {
		return nil
	}
	return &poseOut{Pos: p.Pos, Rot: p.Rot}
}

// Join asks the realm to join the scene and waits for its answer: the
// scene's other members, or a *RefusalError (ErrDenied, ErrUnknownScene,
// ErrAlreadyJoined, ErrRateLimited). Without a deadline on ctx it gives up
// after 10s. Joins are answered one at a time: a concurrent Join waits.
//
// The realm's refusals carry no request id, so while a join is pending a
// refusal with one of those codes is taken as its answer.
func (c *Client) Join(ctx context.Context, scene string) (Joined, error) {
	if scene == "" || len(scene) > maxSceneID {
		return Joined{}, fmt.Errorf("vr: join: scene id %q: want 1 to %d bytes", scene, maxSceneID)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultJoinTimeout)
		defer cancel()
	}
	select {
	case c.joinSlot <- struct{}{}:
	case <-ctx.Done():
		return Joined{}, fmt.Errorf("vr: join %s: %w", scene, ctx.Err())
	}
	defer func() { <-c.joinSlot }()

	answer := make(chan joinAnswer, 1)
	c.joinMu.Lock()
	c.joinWait = answer
	c.joinMu.Unlock()
	defer func() {
		c.joinMu.Lock()
		c.joinWait = nil
		c.joinMu.Unlock()
	}()
	if err := c.writeJSON(map[string]string{"type": "join", "scene": scene}); err != nil {
		return Joined{}, fmt.Errorf("vr: join %s: %w", scene, err)
	}
	select {
	case a := <-answer:
		if a.err != nil {
			return Joined{}, fmt.Errorf("vr: join %s: %w", scene, a.err)
		}
		return a.joined, nil
	case <-c.done:
		return Joined{}, fmt.Errorf("vr: join %s: %w: %w", scene, ErrClosed, c.Err())
	case <-ctx.Done():
		return Joined{}, fmt.Errorf("vr: join %s: %w", scene, ctx.Err())
	}
}

// Leave leaves the joined scene; the realm does not answer, and leaving
// without a scene does nothing.
func (c *Client) Leave() error {
	if err := c.writeJSON(map[string]string{"type": "leave"}); err != nil {
		return fmt.Errorf("vr: leave: %w", err)
	}
	return nil
}

// SendPose tells the scene where the avatar is, for clients that do not
// stream frames (while frames flow, the head of the newest one is the pose).
// The head must be tracked; positions are metres within 1e5. Moving into a
// zone the avatar may not enter is refused with a RefusalError (ErrDenied)
// that Config.OnRefusal receives, since it comes later.
func (c *Client) SendPose(p BodyPose) error {
	if !p.Head.Tracked {
		return errors.New("vr: SendPose: the head must be tracked")
	}
	select {
	case <-c.done:
		return fmt.Errorf("%w: %w", ErrClosed, c.Err())
	default:
	}
	if err := c.writeJSON(newPoseMessage(p)); err != nil {
		return fmt.Errorf("vr: send pose: %w", err)
	}
	return nil
}

// joinAnswer is what a pending Join receives from the reader goroutine.
type joinAnswer struct {
	joined Joined
	err    error
}

// answerJoin hands a joined message or a refusal to a pending Join; it
// reports false when none is pending.
func (c *Client) answerJoin(a joinAnswer) bool {
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	if c.joinWait == nil {
		return false
	}
	select {
	case c.joinWait <- a:
		c.joinWait = nil
		return true
	default:
		return false
	}
}

// answersJoin reports whether a refusal with this code can be the answer
// to a join.
func answersJoin(code string) bool {
	switch code {
	case CodeDenied, CodeUnknownScene, CodeAlreadyJoined, CodeRateLimited:
		return true
	}
	return false
}
