package live

import (
	"bytes"
	"strconv"
	"sync"
	"time"
)

// Interest management: what a member receives of the others' poses, by
// distance. Every poseRerankEvery ticks a recipient ranks the others by
// the distance of their heads to its own; the nearest poseNearCount get
// every change (20 Hz) with hands, the next poseMidCount every
// poseMidEvery ticks (5 Hz) with hands, and the rest every poseFarEvery
// ticks (1 Hz), head only. A scene of a thousand then costs a recipient
// at most about 2,000 poses a second instead of 20,000, and the realm's
// work per tick grows with the members times the poses each receives, not
// with its square. clients/PROTOCOL.md documents the scheme for clients.
const (
	poseNearCount   = 32
	poseMidCount    = 96
	poseMidEvery    = 4
	poseFarEvery    = 20
	poseRerankEvery = 10
)

// A recipient whose messages queue up is decimated before it is cut off:
// beyond poseSlowBytes waiting (a few ticks of a crowded scene's poses)
// it gets only its nearest members' poses, beyond poseSkipBytes no poses
// at all until it has caught up, and beyond liveMaxQueuedBytes it is
// closed as too slow (live.go). The others never wait for it: every push
// is non-blocking. The bounds also bound the realm's memory: a thousand
// stalled clients hold at most about poseSkipBytes each.
const (
	poseSlowBytes = 64 << 10
	poseSkipBytes = 128 << 10
)

// Interest tiers of one member for one recipient.
const (
	tierFar uint8 = iota
	tierMid
	tierNear
)

// presenceHeartbeatTicks is how often this node announces itself and the
// members it holds to the other nodes (once a second).
const presenceHeartbeatTicks = 20

// memberFanout is a member's part of the fan-out, guarded by
// presenceHub.mu and used by the tick alone.
type memberFanout struct {
	// The member's newest pose, encoded once for every recipient: full
	// (head and hands) and head only.
	pos     [3]float64
	version uint32 // the room's version of its last change; 0 for none yet
	full    []byte
	head    []byte
	avatar  []byte // the avatar id as a JSON string

	// As a recipient (members of this node only): the slots it ranked
	// nearest, each slot's tier and the version of the pose last sent.
	ranked bool
	near   []int32
	tier   []uint8
	sent   []uint32
	// lastSize sizes the next poses message's buffer.
	lastSize int
}

// fit grows the recipient's per-slot state to the room's slots.
func (f *memberFanout) fit(slots int) {
	for len(f.tier) < slots {
		f.tier = append(f.tier, tierFar)
	}
	for len(f.sent) < slots {
		f.sent = append(f.sent, 0)
	}
}

// setPose encodes a new pose of the member.
func (f *memberFanout) setPose(avatar string, p *avatarPose, version uint32) {
	if f.avatar == nil {
		f.avatar = encodeJSON(avatar)
	}
	f.pos = p.Head.Pos
	f.version = version
	f.full = appendPoseFragment(f.full[:0], f.avatar, p, true)
	f.head = appendPoseFragment(f.head[:0], f.avatar, p, false)
}

// appendPoseFragment appends one entry of a poses message. Numbers are
// written with float32 precision, which is what poses carry (frames are
// float32, engines render with it) and what keeps the message short.
func appendPoseFragment(dst, avatar []byte, p *avatarPose, hands bool) []byte {
	dst = append(dst, `{"avatar":`...)
	dst = append(dst, avatar...)
	dst = appendPoseField(dst, `,"head":`, &p.Head)
	if hands {
		if p.Left != nil {
			dst = appendPoseField(dst, `,"left":`, p.Left)
		}
		if p.Right != nil {
			dst = appendPoseField(dst, `,"right":`, p.Right)
		}
	}
	return append(dst, '}')
}

func appendPoseField(dst []byte, name string, p *poseJSON) []byte {
	dst = append(dst, name...)
	dst = append(dst, `{"pos":[`...)
	for i, v := range p.Pos {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendFloat(dst, v, 'g', -1, 32)
	}
	dst = append(dst, `],"rot":[`...)
	for i, v := range p.Rot {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendFloat(dst, v, 'g', -1, 32)
	}
	return append(dst, "]}"...)
}

// posesBuffers holds the buffers of poses messages that were written. A
// poses message is assembled for one connection alone, so its writer gives
// the buffer back (recyclePoses); a crowded scene would otherwise allocate
// hundreds of MB a second of messages for the garbage collector.
var posesBuffers sync.Pool // of *[]byte

// posesBuffer is an empty buffer of at least size bytes.
func posesBuffer(size int) []byte {
	if p, _ := posesBuffers.Get().(*[]byte); p != nil && cap(*p) >= size {
		return (*p)[:0]
	}
	return make([]byte, 0, size)
}

// recyclePoses gives back the buffer of a written message when it is a
// poses message, which nothing else holds.
func recyclePoses(msg []byte) {
	if !bytes.HasPrefix(msg, posesMessagePrefix) {
		return
	}
	msg = msg[:0]
	posesBuffers.Put(&msg)
}

var posesMessagePrefix = []byte(`{"type":"poses",`)

// presenceEvent is a join, leave or zone change waiting for the tick.
type presenceEvent struct {
	seq  uint64
	wire presenceEventWire
	// fields is the event's JSON without its braces: a presence message
	// of one event carries them at its top level, one of several in its
	// events list.
	fields []byte
	// fromHere marks an event of this node's member: the other nodes are
	// told of it too.
	fromHere bool
}

// queue adds an event for the next tick; the caller holds h.mu.
func (room *sceneRoom) queue(ev presenceEventWire, fromHere bool) {
	room.seq++
	b := encodeJSON(ev)
	room.pending = append(room.pending, presenceEvent{seq: room.seq, wire: ev, fields: b[1 : len(b)-1], fromHere: fromHere})
}

// presenceDelivery builds the presence message of the events after seq
// after, nil when there are none: one event keeps the shape of a single
// presence message, several go in an events list.
func (room *sceneRoom) presenceDelivery(events []presenceEvent, after uint64) []byte {
	n, size := 0, 0
	for i := range events {
		if events[i].seq > after {
			n++
			size += len(events[i].fields) + 3
		}
	}
	if n == 0 {
		return nil
	}
	scene := room.posesPrefix[len(`{"type":"poses","scene":`) : len(room.posesPrefix)-len(`,"poses":[`)]
	buf := make([]byte, 0, size+len(scene)+48)
	buf = append(buf, `{"type":"presence","scene":`...)
	buf = append(buf, scene...)
	if n == 1 {
		for i := range events {
			if events[i].seq > after {
				buf = append(buf, ',')
				buf = append(buf, events[i].fields...)
			}
		}
		return append(buf, '}')
	}
	buf = append(buf, `,"events":[`...)
	first := true
	for i := range events {
		if events[i].seq <= after {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, '{')
		buf = append(buf, events[i].fields...)
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// delivery is one message for one connection, pushed after the tick has
// released the hub's lock.
type delivery struct {
	c   *socket
	msg []byte
}

// tick sends what changed since the last one: each room's presence
// events, then each member's poses by interest; and tells the other nodes
// of this node's changes.
func (h *presenceHub) tick(now time.Time) {
	var cluster []clusterMessage
	h.mu.Lock()
	h.ticks++
	heartbeat := h.ticks%presenceHeartbeatTicks == 0
	if heartbeat {
		h.expirePeers(now)
	}
	publishPoses := len(h.peers) > 0
	deliveries := h.deliveries[:0]
	for id, room := range h.rooms {
		deliveries, cluster = h.tickRoom(room, deliveries, cluster, publishPoses)
		if room.empty() {
			delete(h.rooms, id)
		}
	}
	if heartbeat {
		cluster = append(cluster, h.heartbeat())
	}
	h.mu.Unlock()

	for _, d := range deliveries {
		d.c.push(d.msg)
	}
	clear(deliveries)
	h.deliveries = deliveries[:0]
	h.publish(cluster)
}

// tickRoom fans out one room's presence events and poses; the caller holds
// h.mu.
func (h *presenceHub) tickRoom(room *sceneRoom, deliveries []delivery, cluster []clusterMessage, publishPoses bool) ([]delivery, []clusterMessage) {
	if events := room.pending; len(events) > 0 {
		room.pending = nil
		var shared []byte
		for c, r := range room.local {
			var msg []byte
			if r.joinSeq < events[0].seq {
				if shared == nil {
					shared = room.presenceDelivery(events, 0)
				}
				msg = shared
			} else {
				msg = room.presenceDelivery(events, r.joinSeq)
			}
			if msg != nil {
				deliveries = append(deliveries, delivery{c, msg})
			}
		}
		cluster = h.appendPresenceDelta(cluster, room, events)
	}

	if len(room.local) == 0 {
		// Only other nodes' members: nobody here to send poses to, and
		// their newest poses wait in latest for whoever joins.
		return deliveries, cluster
	}
	var relay []byte
	for _, m := range room.slots {
		if m == nil {
			continue
		}
		p := m.latest.Swap(nil)
		if p == nil {
			continue
		}
		room.version++
		if room.version == 0 {
			room.version = 1 // wrapped after 2^32 changes: 0 means no pose
		}
		m.fanout.setPose(m.avatar, p, room.version)
		if publishPoses && m.conn != nil {
			if relay == nil {
				relay = append(make([]byte, 0, 256*len(room.local)), room.posesPrefix...)
			} else {
				relay = append(relay, ',')
			}
			relay = append(relay, m.fanout.full...)
		}
	}
	if relay != nil {
		cluster = append(cluster, clusterMessage{subject: h.posesSubject(room.scene.ID), data: append(relay, "]}"...), poses: true})
	}
	if room.version == 0 {
		return deliveries, cluster // nobody has a pose yet
	}
	// The slots' poses side by side, so that assembling a thousand
	// messages reads a few KiB instead of a thousand members.
	room.versions = room.versions[:0]
	room.fulls = room.fulls[:0]
	room.heads = room.heads[:0]
	for _, m := range room.slots {
		if m == nil {
			room.versions = append(room.versions, 0)
			room.fulls = append(room.fulls, nil)
			room.heads = append(room.heads, nil)
			continue
		}
		room.versions = append(room.versions, m.fanout.version)
		room.fulls = append(room.fulls, m.fanout.full)
		room.heads = append(room.heads, m.fanout.head)
	}
	for c, r := range room.local {
		queued := c.queued.Load()
		if queued > poseSkipBytes {
			continue
		}
		f := &r.fanout
		f.fit(len(room.slots))
		if !f.ranked || (h.ticks+uint64(r.slot))%poseRerankEvery == 0 {
			h.rank(room, r)
		}
		if msg := h.assemblePoses(room, r, queued > poseSlowBytes); msg != nil {
			deliveries = append(deliveries, delivery{c, msg})
		}
	}
	return deliveries, cluster
}

// rankEntry is one member's squared distance from a recipient.
type rankEntry struct {
	d2   float64
	slot int32
}

// rank sorts the room's other members into r's interest tiers by
// distance; the caller holds h.mu. A recipient without a pose yet ranks
// from the scene's origin.
func (h *presenceHub) rank(room *sceneRoom, r *presenceMember) {
	f := &r.fanout
	f.ranked = true
	for _, j := range f.near {
		if int(j) < len(f.tier) {
			f.tier[j] = tierFar
		}
	}
	f.near = f.near[:0]
	entries := h.ranking[:0]
	for j, m := range room.slots {
		if m == nil || m == r || m.fanout.version == 0 {
			continue
		}
		dx, dy, dz := m.fanout.pos[0]-f.pos[0], m.fanout.pos[1]-f.pos[1], m.fanout.pos[2]-f.pos[2]
		entries = append(entries, rankEntry{d2: dx*dx + dy*dy + dz*dz, slot: int32(j)})
	}
	h.ranking = entries
	n := min(len(entries), poseNearCount+poseMidCount)
	selectNearest(entries, n)
	selectNearest(entries[:n], min(n, poseNearCount))
	for i, e := range entries[:n] {
		tier := tierMid
		if i < poseNearCount {
			tier = tierNear
		}
		f.tier[e.slot] = tier
		f.near = append(f.near, e.slot)
	}
}

// selectNearest reorders entries so that the k nearest come first, in no
// particular order (quickselect: linear on average, where sorting a
// thousand members for every recipient would dominate the tick).
func selectNearest(entries []rankEntry, k int) {
	lo, hi := 0, len(entries)-1
	for lo < hi && k > lo && k <= hi {
		// Median of three as the pivot keeps positions that arrive
		// sorted, or all equal, from the quadratic case.
		mid := lo + (hi-lo)/2
		if entries[mid].d2 < entries[lo].d2 {
			entries[mid], entries[lo] = entries[lo], entries[mid]
		}
		if entries[hi].d2 < entries[lo].d2 {
			entries[hi], entries[lo] = entries[lo], entries[hi]
		}
		if entries[hi].d2 < entries[mid].d2 {
			entries[hi], entries[mid] = entries[mid], entries[hi]
		}
		pivot := entries[mid].d2
		i, j := lo, hi
		for i <= j {
			for entries[i].d2 < pivot {
				i++
			}
			for entries[j].d2 > pivot {
				j--
			}
			if i <= j {
				entries[i], entries[j] = entries[j], entries[i]
				i++
				j--
			}
		}
		// Now entries[lo..j] <= pivot <= entries[i..hi]; the k-th
		// boundary falls in one side, or between them.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// assemblePoses builds r's poses message of this tick from the encoded
// fragments, nil when nothing is due; the caller holds h.mu. slow limits
// it to the nearest tier.
func (h *presenceHub) assemblePoses(room *sceneRoom, r *presenceMember, slow bool) []byte {
	f := &r.fanout
	versions, sent, tier := room.versions, f.sent[:len(room.versions)], f.tier[:len(room.versions)]
	var buf []byte
	add := func(frag []byte) {
		if buf == nil {
			buf = append(posesBuffer(max(f.lastSize, 4096)), room.posesPrefix...)
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, frag...)
	}
	for _, j := range f.near {
		if int(j) >= len(versions) || j == r.slot {
			continue
		}
		v := versions[j]
		if v == 0 || sent[j] == v || (tier[j] == tierMid && (slow || (h.ticks+uint64(j))%poseMidEvery != 0)) {
			continue
		}
		add(room.fulls[j])
		sent[j] = v
	}
	if !slow {
		for j := int(h.ticks % poseFarEvery); j < len(versions); j += poseFarEvery {
			v := versions[j]
			if v == 0 || sent[j] == v || tier[j] != tierFar || j == int(r.slot) {
				continue
			}
			add(room.heads[j])
			sent[j] = v
		}
	}
	if buf == nil {
		return nil
	}
	buf = append(buf, "]}"...)
	f.lastSize = len(buf) + len(buf)/8
	return buf
}
