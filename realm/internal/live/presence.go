package live

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/scenes"
)

// presenceTick is how often presence and poses are fanned out: 20 Hz is
// smooth enough for other people's avatars, and a fraction of what
// headsets send.
const presenceTick = 50 * time.Millisecond

// presenceDecideTimeout bounds a join or zone decision, audit write
// included.
const presenceDecideTimeout = 5 * time.Second

// presenceHub is who stands where in the scenes this node serves: its own
// connections that joined a scene, and the members other nodes told it
// of. Everything a member sees of the others goes out on the tick
// (presence_fanout.go): joins, leaves and zone changes coalesced into one
// presence message, and poses assembled from fragments encoded once.
// Presence and poses go between nodes over core NATS
// (presence_cluster.go), since they are worthless a moment later and need
// no storage.
//
// Locks: presenceHub.mu and a member's zoneMu are never held together, and
// nothing else is taken under presenceHub.mu. Messages are pushed after it
// is released, except a joined snapshot, which is offered without
// blocking so that no presence message can overtake it.
type presenceHub struct {
	svc    *Service
	log    *slog.Logger
	node   string
	prefix string

	mu    sync.Mutex
	rooms map[string]*sceneRoom
	// peers are the other realm nodes heard from, by name.
	peers map[string]*presencePeer
	ticks uint64
	// Scratch space of the tick, reused so that a tick allocates only the
	// messages it sends.
	ranking    []rankEntry
	deliveries []delivery
}

// sceneRoom is one scene's members as this node knows them.
type sceneRoom struct {
	scene  *scenes.Scene
	local  map[*socket]*presenceMember
	remote map[string]*presenceMember // by node and avatar: see remoteKey
	// slots index every member, local and remote, for the fan-out: a
	// member keeps its slot while in the scene, and a freed slot is
	// reused.
	slots []*presenceMember
	free  []int32
	// version counts pose changes in the room; a member's pose carries the
	// version of its last change, so a recipient knows whether it has it.
	version uint32
	// seq counts presence events; pending are those not yet sent.
	seq     uint64
	pending []presenceEvent
	// posesPrefix starts every poses message of the room.
	posesPrefix []byte
	// The tick's copy of each slot's pose version and fragments.
	versions []uint32
	fulls    [][]byte
	heads    [][]byte
}

// presenceMember is one avatar's place in a scene: a connection of this
// node, or a member another node told of.
type presenceMember struct {
	conn   *socket // nil for a member of another node
	node   string
	room   *sceneRoom
	avatar string
	name   string
	mark   Mark

	// latest is the newest pose not yet fanned out: written by whoever
	// reads the member's motion, taken by the tick.
	latest atomic.Pointer[avatarPose]

	// zoneMu guards the zone decision of a local member.
	zoneMu sync.Mutex
	zone   string
	// refused is the zone the avatar stands in but was denied: it counts
	// as still in zone, and is not asked again until it steps out.
	refused  string
	deciding bool

	// Guarded by presenceHub.mu.
	slot int32
	// shownZone is the zone the others were told of, which snapshots show.
	shownZone string
	// joinSeq is the room's event count at the join: the joined snapshot
	// holds every event up to it.
	joinSeq uint64
	fanout  memberFanout
}

func remoteKey(node, avatar string) string { return node + "\x00" + avatar }

// subscribe listens to the cluster's presence subjects.
func (h *presenceHub) subscribe() ([]*nats.Subscription, error) {
	in := presenceInbound{h}
	handlers := []struct {
		subject string
		handle  nats.MsgHandler
	}{
		// One subscription for both, so that a node's presence and poses
		// are handled in the order it sent them (a tick sends presence
		// first): with two, each has its own delivery goroutine, and a new
		// member's first poses could be applied before its join and be
		// dropped as a stranger's.
		{h.prefix + ".scene.*.*", in.remoteScene},
		{h.heartbeatSubject(), in.remoteHeartbeat},
		{h.syncSubject(h.node), in.answerSync},
	}
	subs := make([]*nats.Subscription, 0, len(handlers))
	for _, hd := range handlers {
		sub, err := h.svc.deps.NC.Subscribe(hd.subject, hd.handle)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, fmt.Errorf("realm: presence: subscribe %s: %w", hd.subject, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// room is the scene's room, made when missing; the caller holds h.mu.
func (h *presenceHub) room(sc *scenes.Scene) *sceneRoom {
	room := h.rooms[sc.ID]
	if room == nil {
		room = &sceneRoom{scene: sc, local: map[*socket]*presenceMember{}, remote: map[string]*presenceMember{},
			posesPrefix: []byte(`{"type":"poses","scene":` + string(encodeJSON(sc.ID)) + `,"poses":[`)}
		h.rooms[sc.ID] = room
	}
	return room
}

// add gives m a slot in the room; the caller holds h.mu.
func (room *sceneRoom) add(m *presenceMember) {
	m.room = room
	if n := len(room.free); n > 0 {
		m.slot = room.free[n-1]
		room.free = room.free[:n-1]
		room.slots[m.slot] = m
	} else {
		m.slot = int32(len(room.slots))
		room.slots = append(room.slots, m)
	}
	if m.conn != nil {
		room.local[m.conn] = m
	} else {
		room.remote[remoteKey(m.node, m.avatar)] = m
	}
}

// remove takes m out of the room; the caller holds h.mu.
func (room *sceneRoom) remove(m *presenceMember) {
	if m.conn != nil {
		delete(room.local, m.conn)
	} else {
		delete(room.remote, remoteKey(m.node, m.avatar))
	}
	if int(m.slot) < len(room.slots) && room.slots[m.slot] == m {
		room.slots[m.slot] = nil
		room.free = append(room.free, m.slot)
	}
}

// empty reports whether nobody on any node is in the room and nothing is
// left to send.
func (room *sceneRoom) empty() bool {
	return len(room.local) == 0 && len(room.remote) == 0 && len(room.pending) == 0
}

// views lists the room's members as a joined snapshot shows them; the
// caller holds h.mu.
func (room *sceneRoom) views() []Member {
	out := make([]Member, 0, len(room.local)+len(room.remote))
	for _, m := range room.slots {
		if m != nil {
			out = append(out, m.view())
		}
	}
	return out
}

// view is the member as snapshots show it; the caller holds h.mu.
func (m *presenceMember) view() Member {
	return Member{Avatar: m.avatar, Name: m.name, Zone: m.shownZone, Mark: m.mark}
}

// join decides whether c may join the scene, answers with a snapshot of
// its members, and tells the others on the next tick. An agent joins by
// the same decision as a person, its delegation first (decide.DecideEither),
// under the name it asked for (name, "" for its id) and marked as its
// owner's agent.
func (h *presenceHub) join(c *socket, sceneID, name string) {
	if m := c.member.Load(); m != nil {
		c.refuse(codeJoined, "already in scene "+strconv.Quote(m.room.scene.ID)+": leave first", false)
		return
	}
	sc, ok := h.svc.deps.Scenes.Scene(sceneID)
	if !ok {
		c.refuse(codeUnknownScene, "no scene "+strconv.Quote(sceneID), false)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, presenceDecideTimeout)
	defer cancel()
	p, err := h.svc.livePrincipal(ctx, c)
	if err != nil {
		c.refuse(codeDenied, err.Error(), false)
		return
	}
	resource := scenes.SceneUID(sc.ID)
	if d := h.svc.deps.Decider.DecideEither(ctx, sc, p, h.svc.assess(ctx, c), scenes.ActionJoinScene, resource, nil); !d.Allow {
		c.refuse(codeDenied, d.Reason, false)
		return
	}
	if p.IsAgent() {
		h.enter(c, sc, p.Agent.ID, cmp.Or(name, p.Agent.ID), agentMark(p))
		return
	}
	h.enter(c, sc, p.Avatar.ID, p.Avatar.Name, Mark{Kind: kindPerson})
}

// enter puts the connection's avatar into the scene, allowed to join, and
// answers with the snapshot of the scene's members.
func (h *presenceHub) enter(c *socket, sc *scenes.Scene, avatar, name string, mark Mark) {
	m := &presenceMember{conn: c, node: h.node, avatar: avatar, name: name, mark: mark}
	h.mu.Lock()
	if c.closed.Load() || c.member.Load() != nil {
		h.mu.Unlock()
		return
	}
	room := h.room(sc)
	members := room.views()
	room.add(m)
	room.queue(presenceEventWire{Avatar: m.avatar, Name: m.name, Event: presenceJoin, Mark: m.mark}, true)
	m.joinSeq = room.seq
	c.member.Store(m)
	// Offered under the lock, so that no presence delta of the tick can
	// reach the client before the snapshot it continues.
	sent := c.offer(encodeJSON(joinedMessage{Type: "joined", Scene: sc.ID, Members: members}))
	h.mu.Unlock()
	if !sent {
		c.close(closeTooSlow, "too slow: messages were not read in time")
	}
}

// leave takes c out of its scene, if any; the others are told on the next
// tick.
func (h *presenceHub) leave(c *socket) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := c.member.Swap(nil)
	if m == nil {
		return
	}
	m.room.remove(m)
	m.room.queue(presenceEventWire{Avatar: m.avatar, Event: presenceLeave, Zone: m.shownZone}, true)
}

// end is the end of a connection: it leaves its scene, and a join that is
// being decided does not put it back.
func (h *presenceHub) end(c *socket) {
	if h == nil {
		return
	}
	h.mu.Lock()
	c.closed.Store(true)
	h.mu.Unlock()
	h.leave(c)
}

// pose records c's newest pose, for the next tick, and decides a zone
// change. It reports false when c has joined no scene. It runs for every
// frame message, so it takes no lock shared with other members unless
// the zone changes.
func (h *presenceHub) pose(c *socket, p avatarPose) bool {
	m := c.member.Load()
	if m == nil {
		return false
	}
	p.Avatar = m.avatar
	zone := ""
	if z, ok := m.room.scene.ZoneAt(p.Head.Pos); ok {
		zone = z.ID
	}
	m.latest.Store(&p)

	m.zoneMu.Lock()
	if zone != m.refused {
		m.refused = ""
	}
	from := m.zone
	// Stepping out of every zone needs no permission. (zone == "" equals
	// the cleared refusal, so it is told apart before the refusal check.)
	stepOut := zone == "" && from != "" && !m.deciding
	decide := zone != "" && zone != from && zone != m.refused && !m.deciding
	if stepOut {
		m.zone = ""
	}
	if decide {
		m.deciding = true
	}
	m.zoneMu.Unlock()
	if stepOut {
		h.zoneChanged(m, "")
	}
	if decide {
		h.enterZone(c, m, from, zone)
	}
	return true
}

// zoneChanged tells the scene, on the next tick, that m is in zone now.
func (h *presenceHub) zoneChanged(m *presenceMember, zone string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.conn.member.Load() != m {
		return // left meanwhile: its leave says the rest
	}
	m.shownZone = zone
	m.room.queue(presenceEventWire{Avatar: m.avatar, Event: presenceZone, Zone: zone}, true)
}

// enterZone decides whether m may step from one zone into another. A
// denied avatar has left the zone it came from without being admitted to
// the next: it stands in no zone, for everyone else and for the decisions
// made from its zone (twin commands), until it steps into one it may enter.
func (h *presenceHub) enterZone(c *socket, m *presenceMember, from, to string) {
	ctx, cancel := context.WithTimeout(c.ctx, presenceDecideTimeout)
	defer cancel()
	sc := m.room.scene
	var d policy.Decision
	if p, err := h.svc.livePrincipal(ctx, c); err != nil {
		d.Reason = err.Error()
	} else {
		d = h.svc.deps.Decider.DecideEither(ctx, sc, p, h.svc.assess(ctx, c), scenes.ActionEnterZone, scenes.ZoneUID(to), map[string]any{scenes.ContextAvatarZone: from})
	}

	m.zoneMu.Lock()
	m.deciding = false
	left := false
	if d.Allow {
		m.zone = to
	} else {
		left = m.zone != ""
		m.zone, m.refused = "", to
	}
	m.zoneMu.Unlock()
	if c.member.Load() != m {
		return
	}
	if d.Allow {
		h.zoneChanged(m, to)
		return
	}
	if left {
		h.zoneChanged(m, "")
	}
	c.refuse(codeDenied, fmt.Sprintf("entering zone %s was denied: %s", strconv.Quote(to), d.Reason), false)
}

// Standing is where the realm sees an avatar in one scene: whether it is
// a member there, on this node or another, and the zone it was admitted
// into ("" for none). Zones lists the differing zones of an avatar present
// more than once, which names no single place.
type Standing struct {
	Scene   string
	Present bool
	Zone    string
	Zones   []string
}

// String says where the realm sees the avatar, for a deny's reason.
func (s Standing) String() string {
	switch {
	case !s.Present:
		return "the realm sees you in no zone: you are not in scene " + strconv.Quote(s.Scene) + " (join it over /v1/realm and walk into a zone)"
	case len(s.Zones) > 1:
		named := make([]string, len(s.Zones))
		for i, z := range s.Zones {
			named[i] = cmp.Or(z, "no zone")
		}
		return fmt.Sprintf("the realm sees you in several places of scene %s at once (%s): command from the session that stands in the zone", strconv.Quote(s.Scene), strings.Join(named, ", "))
	case s.Zone == "":
		return "the realm sees you in scene " + strconv.Quote(s.Scene) + " but in no zone"
	default:
		return "the realm sees you in zone " + s.Zone
	}
}

// whereIs is where the realm has admitted the avatar in the scene: the
// zone its presence shows, as the scene's members are told of it. The
// session's own connection on this node decides when it is in the scene;
// otherwise the avatar's presences, here and on other nodes, must agree
// on one zone, and an avatar seen in several zones stands in none.
func (h *presenceHub) whereIs(sceneID, avatarID, sessionID string) Standing {
	s := Standing{Scene: sceneID}
	if h == nil {
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	room := h.rooms[sceneID]
	if room == nil {
		return s
	}
	seen := func(zone string) {
		if !s.Present {
			s.Present, s.Zone = true, zone
		}
		if !slices.Contains(s.Zones, zone) {
			s.Zones = append(s.Zones, zone)
		}
	}
	for c, m := range room.local {
		if m.avatar != avatarID {
			continue
		}
		if c.session == sessionID && !c.closed.Load() {
			return Standing{Scene: sceneID, Present: true, Zone: m.shownZone}
		}
		seen(m.shownZone)
	}
	for _, m := range room.remote {
		if m.avatar == avatarID {
			seen(m.shownZone)
		}
	}
	if len(s.Zones) > 1 {
		s.Zone = ""
	}
	return s
}
