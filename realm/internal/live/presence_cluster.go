package live

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/clustermsg"
)

// Presence between realm nodes, over core NATS:
//
//   - <prefix>.scene.<id>.presence: a node's members' joins, leaves and zone
//     changes of one tick, as one presenceDelta; as a node stops, the
//     leaves of all its members.
//   - <prefix>.scene.<id>.poses: the poses of a node's members that moved in
//     one tick, as a poses message; the sending node is the nodeHeader, so
//     a node skips its own without reading them. Sent only while another
//     node is alive.
//   - <prefix>.presence.heartbeat: every node, once a second, with how many
//     members it holds in each scene. A node not heard from for
//     presencePeerExpiry is taken for dead: its members leave.
//   - <prefix>.presence.sync.<node>: a request for the node's members of
//     every scene. A node asks for it when it hears a node it does not know
//     (it started late, or the other did) or when a heartbeat's counts
//     differ from what it was told (core NATS may drop a message).
const (
	// presencePeerExpiry is how long a node may stay silent: more than
	// three missed heartbeats.
	presencePeerExpiry = 3500 * time.Millisecond
	// presenceSyncTimeout bounds a snapshot request.
	presenceSyncTimeout = 2 * time.Second
	nodeHeader          = clustermsg.NodeHeader
)

// presenceInbound is the hub as the other nodes' messages reach it:
// checking each one's tag, applying their presence, poses and snapshots,
// and answering their sync requests. A view of the hub, apart from what
// this node's own members do, so that each type keeps to one concern.
type presenceInbound struct{ *presenceHub }

// presencePeer is another realm node as this one has heard of it.
type presencePeer struct {
	lastSeen time.Time
	syncing  bool
}

// presenceDelta is one tick's presence events of a node's members of a
// scene.
type presenceDelta struct {
	Node   string              `json:"node"`
	Scene  string              `json:"scene"`
	Events []presenceEventWire `json:"events"`
}

// presenceHeartbeat says a node is alive, with its member count by scene.
type presenceHeartbeat struct {
	Node   string         `json:"node"`
	Scenes map[string]int `json:"scenes"`
}

// presenceSnapshot is a node's members of every scene, the answer to a
// sync request.
type presenceSnapshot struct {
	Node   string              `json:"node"`
	Scenes map[string][]Member `json:"scenes"`
}

// clusterMessage is a message for the other nodes, published after the
// tick has released the hub's lock.
type clusterMessage struct {
	subject string
	data    []byte
	poses   bool // carries the node header
}

func (h *presenceHub) presenceSubject(scene string) string {
	return h.prefix + ".scene." + scene + ".presence"
}

func (h *presenceHub) posesSubject(scene string) string {
	return h.prefix + ".scene." + scene + ".poses"
}

func (h *presenceHub) heartbeatSubject() string { return h.prefix + ".presence.heartbeat" }

func (h *presenceHub) syncSubject(node string) string { return h.prefix + ".presence.sync." + node }

func (h *presenceHub) publish(msgs []clusterMessage) {
	now := h.now()
	for _, m := range msgs {
		msg := &nats.Msg{Subject: m.subject, Data: m.data}
		if m.poses {
			msg.Header = nats.Header{nodeHeader: {h.node}}
		}
		h.svc.deps.Cluster.Sign(msg, m.subject, now)
		if err := h.svc.deps.NC.PublishMsg(msg); err != nil {
			h.log.Warn("publish presence", "subject", m.subject, "err", err)
		}
	}
}

// appendPresenceDelta adds the room's events of this node's members to
// what the tick publishes; the caller holds h.mu.
func (h *presenceHub) appendPresenceDelta(cluster []clusterMessage, room *sceneRoom, events []presenceEvent) []clusterMessage {
	var mine []presenceEventWire
	for _, ev := range events {
		if ev.fromHere {
			mine = append(mine, ev.wire)
		}
	}
	if len(mine) == 0 {
		return cluster
	}
	return append(cluster, clusterMessage{subject: h.presenceSubject(room.scene.ID),
		data: encodeJSON(presenceDelta{Node: h.node, Scene: room.scene.ID, Events: mine})})
}

// farewell tells the other nodes, as this node stops, that its members
// have left (with whatever else they did since the last tick), so that
// they vanish at once instead of after presencePeerExpiry.
func (h *presenceHub) farewell() {
	var cluster []clusterMessage
	h.mu.Lock()
	for _, room := range h.rooms {
		var leaving []presenceEvent
		for _, ev := range room.pending {
			if ev.fromHere {
				leaving = append(leaving, ev)
			}
		}
		for _, m := range room.local {
			leaving = append(leaving, presenceEvent{wire: presenceEventWire{Avatar: m.avatar, Event: presenceLeave, Zone: m.shownZone}, fromHere: true})
		}
		cluster = h.appendPresenceDelta(cluster, room, leaving)
	}
	h.mu.Unlock()
	h.publish(cluster)
}

// heartbeat is this node's heartbeat, counted in the same critical
// section that drained the events it published; the caller holds h.mu.
func (h *presenceHub) heartbeat() clusterMessage {
	hb := presenceHeartbeat{Node: h.node, Scenes: map[string]int{}}
	for id, room := range h.rooms {
		if len(room.local) > 0 {
			hb.Scenes[id] = len(room.local)
		}
	}
	return clusterMessage{subject: h.heartbeatSubject(), data: encodeJSON(hb)}
}

// now reads the realm's clock (Deps.Clock); a hub made without its
// service, as the fan-out's own tests make it, reads the system's.
func (h *presenceHub) now() time.Time {
	if h.svc == nil || h.svc.now == nil {
		return time.Now()
	}
	return h.svc.now()
}

// heard notes that a node is alive; the caller holds h.mu.
func (h *presenceHub) heard(node string) *presencePeer {
	p := h.peers[node]
	if p == nil {
		p = &presencePeer{}
		h.peers[node] = p
	}
	p.lastSeen = h.now()
	return p
}

// livePeers names the nodes heard from within presencePeerExpiry of now.
func (h *presenceHub) livePeers(now time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for node, p := range h.peers {
		if now.Sub(p.lastSeen) < presencePeerExpiry {
			out = append(out, node)
		}
	}
	return out
}

// expirePeers takes the members of nodes that went silent out of every
// scene; the caller holds h.mu.
func (h *presenceHub) expirePeers(now time.Time) {
	for node, p := range h.peers {
		if now.Sub(p.lastSeen) < presencePeerExpiry {
			continue
		}
		delete(h.peers, node)
		n := 0
		for _, room := range h.rooms {
			for _, m := range room.remote {
				if m.node == node {
					h.removeRemote(room, m)
					n++
				}
			}
		}
		h.log.Warn("realm node went silent: its members left", "peer", node, "members", n)
	}
}

// removeRemote takes another node's member out and tells this node's
// members; the caller holds h.mu.
func (h *presenceHub) removeRemote(room *sceneRoom, m *presenceMember) {
	room.remove(m)
	room.queue(presenceEventWire{Avatar: m.avatar, Event: presenceLeave, Zone: m.shownZone}, false)
}

// applyRemote records one event of another node's member and tells this
// node's members when it changed anything; the caller holds h.mu.
func (h presenceInbound) applyRemote(room *sceneRoom, node string, ev presenceEventWire) {
	m := room.remote[remoteKey(node, ev.Avatar)]
	switch ev.Event {
	case presenceLeave:
		if m != nil {
			h.removeRemote(room, m)
		}
	case presenceJoin, presenceZone:
		if m == nil {
			m = &presenceMember{node: node, avatar: ev.Avatar, name: ev.Name, mark: ev.Mark}
			room.add(m)
			m.shownZone = ev.Zone
			room.queue(presenceEventWire{Avatar: m.avatar, Name: m.name, Event: presenceJoin, Mark: m.mark}, false)
			if ev.Zone != "" {
				room.queue(presenceEventWire{Avatar: m.avatar, Event: presenceZone, Zone: ev.Zone}, false)
			}
			return
		}
		if ev.Name != "" {
			m.name = ev.Name
		}
		if ev.Kind != "" {
			m.mark = ev.Mark
		}
		if ev.Event == presenceZone && m.shownZone != ev.Zone {
			m.shownZone = ev.Zone
			room.queue(presenceEventWire{Avatar: m.avatar, Event: presenceZone, Zone: ev.Zone}, false)
		}
	}
}

// remoteScene dispatches another node's scene messages by their last
// subject token; anything else on the scene subjects is ignored.
func (h presenceInbound) remoteScene(msg *nats.Msg) {
	if !h.authentic(msg, msg.Subject, "scene") {
		return
	}
	switch {
	case strings.HasSuffix(msg.Subject, ".presence"):
		h.remotePresence(msg)
	case strings.HasSuffix(msg.Subject, ".poses"):
		h.remotePoses(msg)
	}
}

// remotePresence applies another node's presence delta.
func (h presenceInbound) remotePresence(msg *nats.Msg) {
	var d presenceDelta
	if err := json.Unmarshal(msg.Data, &d); err != nil || d.Node == "" || d.Node == h.node {
		return
	}
	sc, ok := h.svc.deps.Scenes.Scene(d.Scene)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heard(d.Node)
	room := h.room(sc)
	for _, ev := range d.Events {
		if ev.Avatar != "" {
			h.applyRemote(room, d.Node, ev)
		}
	}
}

// remotePoses takes another node's members' poses for the next tick, which
// fans them out to this node's members by interest like its own.
func (h presenceInbound) remotePoses(msg *nats.Msg) {
	node := msg.Header.Get(nodeHeader)
	if node == "" || node == h.node {
		return
	}
	var p posesMessage
	if err := json.Unmarshal(msg.Data, &p); err != nil || len(p.Poses) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heard(node)
	room := h.rooms[p.Scene]
	if room == nil {
		return
	}
	for i := range p.Poses {
		pose := &p.Poses[i]
		if !pose.Head.within() || (pose.Left != nil && !pose.Left.within()) || (pose.Right != nil && !pose.Right.within()) {
			continue
		}
		if m := room.remote[remoteKey(node, pose.Avatar)]; m != nil {
			m.latest.Store(pose)
		}
	}
}

// remoteHeartbeat notes a node alive, and asks for its members when it is
// new or its counts differ from what this node was told.
func (h presenceInbound) remoteHeartbeat(msg *nats.Msg) {
	if !h.authentic(msg, msg.Subject, "heartbeat") {
		return
	}
	var hb presenceHeartbeat
	if err := json.Unmarshal(msg.Data, &hb); err != nil || hb.Node == "" || hb.Node == h.node {
		return
	}
	h.mu.Lock()
	known := h.peers[hb.Node] != nil
	p := h.heard(hb.Node)
	differs := !known
	counts := map[string]int{}
	for id, room := range h.rooms {
		for _, m := range room.remote {
			if m.node == hb.Node {
				counts[id]++
			}
		}
	}
	for id, n := range hb.Scenes {
		if counts[id] != n {
			differs = true
		}
		delete(counts, id)
	}
	if len(counts) > 0 {
		differs = true
	}
	ask := differs && !p.syncing
	if ask {
		p.syncing = true
	}
	h.mu.Unlock()
	if ask {
		go h.syncFrom(hb.Node)
	}
}

// syncFrom asks a node for its members and makes this node's view of them
// match.
func (h presenceInbound) syncFrom(node string) {
	defer func() {
		h.mu.Lock()
		if p := h.peers[node]; p != nil {
			p.syncing = false
		}
		h.mu.Unlock()
	}()
	reply, err := h.svc.deps.NC.Request(h.syncSubject(node), nil, presenceSyncTimeout)
	if err != nil {
		h.log.Warn("presence snapshot request", "peer", node, "err", err)
		return
	}
	if !h.authentic(reply, h.syncSubject(node), "snapshot") {
		return
	}
	var snap presenceSnapshot
	if err := json.Unmarshal(reply.Data, &snap); err != nil || snap.Node != node {
		h.log.Warn("presence snapshot not understood", "peer", node, "err", err)
		return
	}
	h.applySnapshot(snap)
}

// applySnapshot makes this node's view of a node's members the snapshot,
// telling this node's members of each difference.
func (h presenceInbound) applySnapshot(snap presenceSnapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.heard(snap.Node)
	for id, room := range h.rooms {
		keep := map[string]bool{}
		for _, mv := range snap.Scenes[id] {
			keep[mv.Avatar] = true
		}
		for _, m := range room.remote {
			if m.node == snap.Node && !keep[m.avatar] {
				h.removeRemote(room, m)
			}
		}
	}
	for id, members := range snap.Scenes {
		sc, ok := h.svc.deps.Scenes.Scene(id)
		if !ok {
			continue
		}
		room := h.room(sc)
		for _, mv := range members {
			if mv.Avatar != "" {
				h.applyRemote(room, snap.Node, presenceEventWire{Avatar: mv.Avatar, Name: mv.Name, Event: presenceZone, Zone: mv.Zone, Mark: mv.Mark})
			}
		}
	}
}

// authentic reports whether msg carries a valid tag for subject; a
// message that does not is dropped (it may be anyone on NATS claiming to
// be a node) and counted.
func (h presenceInbound) authentic(msg *nats.Msg, subject, kind string) bool {
	if err := h.svc.deps.Cluster.Verify(msg, subject, h.now()); err != nil {
		h.svc.deps.Forged(kind)
		h.log.Debug("cluster message dropped", "subject", msg.Subject, "err", err)
		return false
	}
	return true
}

// answerSync answers a snapshot request with this node's members.
func (h presenceInbound) answerSync(msg *nats.Msg) {
	snap := presenceSnapshot{Node: h.node, Scenes: map[string][]Member{}}
	h.mu.Lock()
	for id, room := range h.rooms {
		for _, m := range room.local {
			snap.Scenes[id] = append(snap.Scenes[id], m.view())
		}
	}
	h.mu.Unlock()
	reply := &nats.Msg{Subject: msg.Reply, Data: encodeJSON(snap)}
	h.svc.deps.Cluster.Sign(reply, h.syncSubject(h.node), h.now())
	if err := msg.RespondMsg(reply); err != nil {
		h.log.Warn("answer presence snapshot request", "err", err)
	}
}
