package realm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/scenes"
)

// presenceTick is how often poses are fanned out: 20 Hz is smooth enough
// for other people's avatars, and a fraction of what headsets send.
const presenceTick = 50 * time.Millisecond

// presenceDecideTimeout bounds a join or zone decision, audit write
// included.
const presenceDecideTimeout = 5 * time.Second

// presenceHub is who stands where in the scenes this node serves: its own
// connections that joined a scene, and the members other nodes told it
// of. Poses and presence go between nodes over core NATS, since they are
// worthless a moment later and need no storage.
//
// Lock order: presenceHub.mu only; nothing else is taken under it, and
// messages are pushed after it is released.
type presenceHub struct {
	r      *Realm
	log    *slog.Logger
	node   string
	prefix string

	mu    sync.Mutex
	rooms map[string]*sceneRoom
}

// sceneRoom is one scene's members as this node knows them.
type sceneRoom struct {
	scene  *scenes.Scene
	local  map[*liveConn]*presenceMember
	remote map[string]memberView // by node and avatar: see remoteKey
}

// presenceMember is one connection's place in a scene.
type presenceMember struct {
	conn   *liveConn
	room   *sceneRoom
	avatar string
	name   string
	// Guarded by presenceHub.mu.
	zone string
	// refused is the zone the avatar stands in but was denied: it counts
	// as still in zone, and is not asked again until it steps out.
	refused  string
	deciding bool
	pose     *avatarPose // newest, not yet fanned out
}

func remoteKey(node, avatar string) string { return node + "\x00" + avatar }

func (h *presenceHub) presenceSubject(scene string) string {
	return h.prefix + ".scene." + scene + ".presence"
}

func (h *presenceHub) posesSubject(scene string) string {
	return h.prefix + ".scene." + scene + ".poses"
}

// startPresence subscribes to every scene's presence and poses and runs
// the fan-out tick until bg ends.
func (r *Realm) startPresence(bg context.Context) error {
	h := &presenceHub{r: r, log: r.log.With("component", "presence"), node: r.cfg.Node, prefix: r.cfg.Prefix, rooms: map[string]*sceneRoom{}}
	subs := make([]*nats.Subscription, 0, 2)
	for subject, handle := range map[string]nats.MsgHandler{
		h.prefix + ".scene.*.presence": h.remotePresence,
		h.prefix + ".scene.*.poses":    h.remotePoses,
	} {
		sub, err := r.nc.Subscribe(subject, handle)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return fmt.Errorf("realm: presence: subscribe %s: %w", subject, err)
		}
		subs = append(subs, sub)
	}
	r.presence = h
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		t := time.NewTicker(presenceTick)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				for _, s := range subs {
					_ = s.Unsubscribe()
				}
				return
			case <-t.C:
				h.tick()
			}
		}
	}()
	return nil
}

// join decides whether c may join the scene, and tells the scene.
func (h *presenceHub) join(c *liveConn, sceneID string) {
	if m := c.member.Load(); m != nil {
		c.refuse(codeJoined, "already in scene "+quote(m.room.scene.ID)+": leave first", false)
		return
	}
	sc, ok := h.r.catalog.Scene(sceneID)
	if !ok {
		c.refuse(codeUnknownScene, "no scene "+quote(sceneID), false)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, presenceDecideTimeout)
	defer cancel()
	a := h.r.trust.assess(ctx, c.sess)
	resource := scenes.SceneUID(sc.ID)
	if d := h.r.decide(ctx, sc, c.p, a, scenes.ActionJoinScene, resource, nil); !d.Allow {
		c.refuse(codeDenied, d.Reason, false)
		return
	}

	m := &presenceMember{conn: c, avatar: c.p.avatar.ID, name: c.p.avatar.Name}
	h.mu.Lock()
	if c.closed.Load() {
		h.mu.Unlock()
		return
	}
	room := h.rooms[sc.ID]
	if room == nil {
		room = &sceneRoom{scene: sc, local: map[*liveConn]*presenceMember{}, remote: map[string]memberView{}}
		h.rooms[sc.ID] = room
	}
	m.room = room
	members := make([]memberView, 0, len(room.local)+len(room.remote))
	for _, o := range room.local {
		members = append(members, memberView{Avatar: o.avatar, Name: o.name, Zone: o.zone})
	}
	for _, o := range room.remote {
		members = append(members, o)
	}
	others := room.localConns()
	room.local[c] = m
	c.member.Store(m)
	h.mu.Unlock()

	c.push(encodeJSON(joinedMessage{Type: "joined", Scene: sc.ID, Members: members}))
	h.announce(room.scene.ID, others, presenceMessage{Type: "presence", Scene: sc.ID, Avatar: m.avatar, Name: m.name, Event: presenceJoin})
}

// leave takes c out of its scene, if any.
func (h *presenceHub) leave(c *liveConn) {
	h.mu.Lock()
	m := c.member.Swap(nil)
	if m == nil {
		h.mu.Unlock()
		return
	}
	delete(m.room.local, c)
	others := m.room.localConns()
	h.dropEmpty(m.room)
	h.mu.Unlock()
	h.announce(m.room.scene.ID, others, presenceMessage{Type: "presence", Scene: m.room.scene.ID, Avatar: m.avatar, Name: m.name, Event: presenceLeave, Zone: m.zone})
}

// end is the end of a connection: it leaves its scene, and a join that is
// being decided does not put it back.
func (h *presenceHub) end(c *liveConn) {
	if h == nil {
		return
	}
	h.mu.Lock()
	c.closed.Store(true)
	h.mu.Unlock()
	h.leave(c)
}

// dropEmpty forgets a room nobody on any node is in; the caller holds h.mu.
func (h *presenceHub) dropEmpty(room *sceneRoom) {
	if len(room.local) == 0 && len(room.remote) == 0 {
		delete(h.rooms, room.scene.ID)
	}
}

// localConns lists the room's connections; the caller holds h.mu.
func (room *sceneRoom) localConns() []*liveConn {
	out := make([]*liveConn, 0, len(room.local))
	for c := range room.local {
		out = append(out, c)
	}
	return out
}

// announce tells this node's other members and the other nodes.
func (h *presenceHub) announce(scene string, local []*liveConn, msg presenceMessage) {
	out := encodeJSON(msg)
	for _, c := range local {
		c.push(out)
	}
	msg.Node = h.node
	if err := h.r.nc.Publish(h.presenceSubject(scene), encodeJSON(msg)); err != nil {
		h.log.Warn("publish presence", "scene", scene, "err", err)
	}
}

// pose records c's newest pose, for the next tick, and decides a zone
// change. It reports false when c has joined no scene.
func (h *presenceHub) pose(c *liveConn, p avatarPose) bool {
	m := c.member.Load()
	if m == nil {
		return false
	}
	p.Avatar = m.avatar
	zone := ""
	if z, ok := m.room.scene.ZoneAt(p.Head.Pos); ok {
		zone = z.ID
	}
	h.mu.Lock()
	m.pose = &p
	if zone != m.refused {
		m.refused = ""
	}
	from := m.zone
	decide := zone != from && zone != m.refused && !m.deciding
	var others []*liveConn
	if decide && zone == "" {
		// Stepping out of every zone needs no permission.
		m.zone, decide = "", false
		others = m.room.localConns()
	}
	if decide {
		m.deciding = true
	}
	h.mu.Unlock()
	if others != nil {
		h.announce(m.room.scene.ID, others, presenceMessage{Type: "presence", Scene: m.room.scene.ID, Avatar: m.avatar, Event: presenceZone, Zone: ""})
	}
	if decide {
		h.enterZone(c, m, from, zone)
	}
	return true
}

// enterZone decides whether m may step from one zone into another. A
// denied avatar stays, for everyone else, in the zone it came from.
func (h *presenceHub) enterZone(c *liveConn, m *presenceMember, from, to string) {
	ctx, cancel := context.WithTimeout(c.ctx, presenceDecideTimeout)
	defer cancel()
	sc := m.room.scene
	a := h.r.trust.assess(ctx, c.sess)
	d := h.r.decide(ctx, sc, c.p, a, scenes.ActionEnterZone, scenes.ZoneUID(to), map[string]any{scenes.ContextAvatarZone: from})

	h.mu.Lock()
	m.deciding = false
	current := c.member.Load() == m
	if current {
		if d.Allow {
			m.zone = to
		} else {
			m.refused = to
		}
	}
	others := m.room.localConns()
	h.mu.Unlock()
	switch {
	case !current:
	case d.Allow:
		h.announce(sc.ID, others, presenceMessage{Type: "presence", Scene: sc.ID, Avatar: m.avatar, Event: presenceZone, Zone: to})
	default:
		c.refuse(codeDenied, fmt.Sprintf("entering zone %s was denied: %s", quote(to), d.Reason), false)
	}
}

// tick fans out the poses that arrived since the last one: to this node's
// members of each scene, and to the other nodes.
func (h *presenceHub) tick() {
	type batch struct {
		scene string
		poses []avatarPose
		to    map[*liveConn]string // recipient and its own avatar
	}
	var batches []batch
	h.mu.Lock()
	for id, room := range h.rooms {
		var poses []avatarPose
		for _, m := range room.local {
			if m.pose != nil {
				poses = append(poses, *m.pose)
				m.pose = nil
			}
		}
		if len(poses) == 0 {
			continue
		}
		to := make(map[*liveConn]string, len(room.local))
		for c, m := range room.local {
			to[c] = m.avatar
		}
		batches = append(batches, batch{scene: id, poses: poses, to: to})
	}
	h.mu.Unlock()

	for _, b := range batches {
		msg := posesMessage{Type: "poses", Scene: b.scene, Poses: b.poses}
		all := encodeJSON(msg)
		for c, self := range b.to {
			if c.busy() {
				continue
			}
			out := all
			if others := withoutAvatar(b.poses, self); len(others) < len(b.poses) {
				if len(others) == 0 {
					continue
				}
				out = encodeJSON(posesMessage{Type: "poses", Scene: b.scene, Poses: others})
			}
			c.push(out)
		}
		msg.Node = h.node
		if err := h.r.nc.Publish(h.posesSubject(b.scene), encodeJSON(msg)); err != nil {
			h.log.Warn("publish poses", "scene", b.scene, "err", err)
		}
	}
}

func withoutAvatar(poses []avatarPose, avatar string) []avatarPose {
	out := make([]avatarPose, 0, len(poses))
	for _, p := range poses {
		if p.Avatar != avatar {
			out = append(out, p)
		}
	}
	return out
}

// busy reports whether the client's queue is more than half full: it is
// then skipped a pose tick rather than cut off, since the next tick
// carries newer poses anyway.
func (c *liveConn) busy() bool { return len(c.send) > cap(c.send)/2 }

// remotePresence keeps the members of other nodes and tells this node's
// members of the same scene.
func (h *presenceHub) remotePresence(msg *nats.Msg) {
	var p presenceMessage
	if err := json.Unmarshal(msg.Data, &p); err != nil || p.Node == "" || p.Node == h.node || p.Avatar == "" {
		return
	}
	switch p.Event {
	case presenceJoin, presenceLeave, presenceZone:
	default:
		return
	}
	h.mu.Lock()
	room := h.rooms[p.Scene]
	if room == nil {
		if p.Event == presenceLeave {
			h.mu.Unlock()
			return
		}
		sc, ok := h.r.catalog.Scene(p.Scene)
		if !ok {
			h.mu.Unlock()
			return
		}
		room = &sceneRoom{scene: sc, local: map[*liveConn]*presenceMember{}, remote: map[string]memberView{}}
		h.rooms[p.Scene] = room
	}
	key := remoteKey(p.Node, p.Avatar)
	if p.Event == presenceLeave {
		delete(room.remote, key)
	} else {
		mv := room.remote[key]
		mv.Avatar, mv.Zone = p.Avatar, p.Zone
		if p.Name != "" {
			mv.Name = p.Name
		}
		room.remote[key] = mv
	}
	local := room.localConns()
	h.dropEmpty(room)
	h.mu.Unlock()
	p.Node = ""
	out := encodeJSON(p)
	for _, c := range local {
		c.push(out)
	}
}

// remotePoses relays another node's poses to this node's members of the
// scene.
func (h *presenceHub) remotePoses(msg *nats.Msg) {
	var p posesMessage
	if err := json.Unmarshal(msg.Data, &p); err != nil || p.Node == "" || p.Node == h.node || len(p.Poses) == 0 {
		return
	}
	h.mu.Lock()
	var local []*liveConn
	if room := h.rooms[p.Scene]; room != nil {
		local = room.localConns()
	}
	h.mu.Unlock()
	if len(local) == 0 {
		return
	}
	p.Node = ""
	out := encodeJSON(p)
	for _, c := range local {
		if !c.busy() {
			c.push(out)
		}
	}
}
