package live

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/scenes"
)

// wsMsg is a message the realm sent a client, as JSON.
type wsMsg map[string]any

func (m wsMsg) str(k string) string { s, _ := m[k].(string); return s }

// presenceEvents are the events of a presence message: one at its top
// level, or several in its events list.
func presenceEvents(m wsMsg) []wsMsg {
	list, ok := m["events"].([]any)
	if !ok {
		return []wsMsg{m}
	}
	out := make([]wsMsg, len(list))
	for i, ev := range list {
		out[i], _ = ev.(map[string]any)
	}
	return out
}

// fanoutHarness is a presence hub with members on connections that are
// never dialled: the tick's fan-out runs as in the realm, and each
// connection's queue is read back.
type fanoutHarness struct {
	t     testing.TB
	h     *presenceHub
	scene *scenes.Scene
	conns []*socket
}

func newFanoutHarness(t testing.TB) *fanoutHarness {
	return &fanoutHarness{t: t, scene: &scenes.Scene{ID: "foundry"},
		h: &presenceHub{log: slog.New(slog.DiscardHandler), node: "realm-a", prefix: "zr",
			rooms: map[string]*sceneRoom{}, peers: map[string]*presencePeer{}}}
}

// join adds a member named avatar; its joined snapshot is returned.
func (f *fanoutHarness) join(avatar string) (*socket, wsMsg) {
	c := &socket{closing: make(chan closeFrame, 1), now: time.Now}
	f.h.enter(c, f.scene, avatar, avatar, Mark{Kind: kindPerson})
	f.conns = append(f.conns, c)
	msgs := f.drain(c)
	if len(msgs) != 1 || msgs[0].str("type") != "joined" {
		f.t.Fatalf("%s's answer to its join = %v, want one joined message", avatar, msgs)
	}
	return c, msgs[0]
}

// move gives c's member a pose at x metres along the scene, its head y
// high, hands tracked.
func (f *fanoutHarness) move(c *socket, x, y float64) { f.moveTo(c, x, y, 0) }

// moveTo gives c's member a pose with its head at x, y, z.
func (f *fanoutHarness) moveTo(c *socket, x, y, z float64) {
	hand := &poseJSON{Pos: [3]float64{x + 0.2, 1, z + 0.25}, Rot: [4]float64{0, 0, 0, 1}}
	f.h.pose(c, avatarPose{Head: poseJSON{Pos: [3]float64{x, y, z}, Rot: [4]float64{0, 0.38268343, 0, 0.9238795}}, Left: hand, Right: hand})
}

// tick runs the fan-out of one tick, as the hub's ticker does, without the
// cluster.
func (f *fanoutHarness) tick() {
	h := f.h
	h.mu.Lock()
	h.ticks++
	var deliveries []delivery
	for id, room := range h.rooms {
		deliveries, _ = h.tickRoom(room, deliveries, nil, false)
		if room.empty() {
			delete(h.rooms, id)
		}
	}
	h.mu.Unlock()
	for _, d := range deliveries {
		d.c.push(d.msg)
	}
}

// drain reads what waits for c, as messages.
func (f *fanoutHarness) drain(c *socket) []wsMsg {
	var out []wsMsg
	for {
		data, ok := c.send.take()
		if !ok {
			return out
		}
		c.queued.Add(-int64(len(data)))
		var m wsMsg
		if err := json.Unmarshal(data, &m); err != nil {
			f.t.Fatalf("message %.80q is not JSON: %v", data, err)
		}
		out = append(out, m)
	}
}

// discard empties c's queue unread, as if written, and returns the bytes and the poses
// it held.
func (f *fanoutHarness) discard(c *socket) (bytes, poses int) {
	for {
		data, ok := c.send.take()
		if !ok {
			return bytes, poses
		}
		c.queued.Add(-int64(len(data)))
		bytes += len(data)
		poses += strings.Count(string(data), `{"avatar":`)
		recyclePoses(data) // as the connection's writer does
	}
}

// posesOf counts the poses c received by avatar, and those with hands.
func (f *fanoutHarness) posesOf(c *socket, count, hands map[string]int) {
	for _, m := range f.drain(c) {
		if m.str("type") != "poses" {
			continue
		}
		list, _ := m["poses"].([]any)
		for _, p := range list {
			pm, _ := p.(map[string]any)
			a, _ := pm["avatar"].(string)
			count[a]++
			if pm["left"] != nil && pm["right"] != nil {
				hands[a]++
			}
		}
	}
}

// TestPoseInterestTiers puts 200 members on a line, one metre apart, all
// moving every tick: the first member receives its 32 nearest at every
// tick with hands, the next 96 every fourth, and the rest once in 20
// ticks, head only.
func TestPoseInterestTiers(t *testing.T) {
	f := newFanoutHarness(t)
	const members, ticks = 200, 40
	for i := range members {
		f.join(fmt.Sprintf("av_%03d", i))
	}
	f.tick() // the joins' presence
	for _, c := range f.conns {
		f.drain(c)
	}
	count, hands := map[string]int{}, map[string]int{}
	for tick := range ticks {
		for i, c := range f.conns {
			f.move(c, float64(i), 1.6+float64(tick)*0.001)
		}
		f.tick()
		f.posesOf(f.conns[0], count, hands)
		for _, c := range f.conns[1:] {
			f.discard(c)
		}
	}
	if count["av_000"] != 0 {
		t.Errorf("the recipient received its own pose %d times", count["av_000"])
	}
	for i := 1; i < members; i++ {
		a := fmt.Sprintf("av_%03d", i)
		want, wantHands := ticks/poseFarEvery, 0
		switch {
		case i <= poseNearCount:
			want, wantHands = ticks, ticks
		case i <= poseNearCount+poseMidCount:
			want, wantHands = ticks/poseMidEvery, ticks/poseMidEvery
		}
		if count[a] != want || hands[a] != wantHands {
			t.Errorf("member %d metres away: %d poses, %d with hands in %d ticks; want %d and %d", i, count[a], hands[a], ticks, want, wantHands)
		}
	}
}

// TestPoseUnchangedNotResent: a member that stops moving is sent once
// more to each recipient, and then not at all.
func TestPoseUnchangedNotResent(t *testing.T) {
	f := newFanoutHarness(t)
	a, _ := f.join("av_a")
	b, _ := f.join("av_b")
	f.move(a, 1, 1.6)
	f.move(b, 2, 1.6)
	count, hands := map[string]int{}, map[string]int{}
	for range 10 {
		f.tick()
		f.posesOf(b, count, hands)
		f.drain(a)
	}
	if count["av_a"] != 1 {
		t.Errorf("a still member's pose was received %d times in 10 ticks, want 1", count["av_a"])
	}
}

// TestPresenceCoalesced joins 100 members within one tick of a scene of
// 50: each earlier member receives one presence message with the 100
// joins, each newcomer its snapshot and one message with the joins after
// its own, so that everyone knows all 149 others exactly once.
func TestPresenceCoalesced(t *testing.T) {
	f := newFanoutHarness(t)
	known := map[*socket]map[string]int{}
	join := func(avatar string) {
		c, joined := f.join(avatar)
		known[c] = map[string]int{}
		members, _ := joined["members"].([]any)
		for _, mv := range members {
			m, _ := mv.(map[string]any)
			known[c][m["avatar"].(string)]++
		}
	}
	// tick runs a tick and returns how many presence messages each
	// member received, counting the joins they told of.
	tick := func() []int {
		f.tick()
		counts := make([]int, len(f.conns))
		for i, c := range f.conns {
			for _, m := range f.drain(c) {
				if m.str("type") != "presence" {
					continue
				}
				counts[i]++
				for _, ev := range presenceEvents(m) {
					if ev.str("event") != "join" {
						t.Errorf("member %d: presence event %v, want only joins", i, ev)
					}
					known[c][ev.str("avatar")]++
				}
			}
		}
		return counts
	}
	for i := range 50 {
		join(fmt.Sprintf("av_old_%02d", i))
	}
	tick()
	for i := range 100 {
		join(fmt.Sprintf("av_new_%02d", i))
	}
	counts := tick()
	for i, c := range f.conns {
		presence := counts[i]
		want := 1
		if i == len(f.conns)-1 {
			want = 0 // the last newcomer's snapshot has everyone
		}
		if presence != want {
			t.Errorf("member %d received %d presence messages, want %d", i, presence, want)
		}
		if len(known[c]) != 149 {
			t.Errorf("member %d knows %d others, want 149", i, len(known[c]))
		}
		for a, n := range known[c] {
			if n != 1 {
				t.Errorf("member %d was told of %s %d times, want once", i, a, n)
			}
		}
	}
}

// TestSlowRecipientDecimated: a recipient with a backlog gets only its
// nearest members' poses, with a larger one none (but still presence), and
// the others get theirs as before.
func TestSlowRecipientDecimated(t *testing.T) {
	f := newFanoutHarness(t)
	const members = 100
	for i := range members {
		f.join(fmt.Sprintf("av_%03d", i))
	}
	slow, fast := f.conns[0], f.conns[1]
	run := func(backlog int64) (map[string]int, map[string]int, int) {
		slowGot, fastGot, presence := map[string]int{}, map[string]int{}, 0
		for tick := range poseFarEvery {
			for i, c := range f.conns {
				f.move(c, float64(i), 1.6+float64(tick)*0.001)
			}
			slow.queued.Store(backlog)
			f.tick()
			slow.queued.Store(0)
			for _, m := range f.drain(slow) {
				if m.str("type") == "presence" {
					presence++
					continue
				}
				for _, p := range m["poses"].([]any) {
					slowGot[p.(map[string]any)["avatar"].(string)]++
				}
			}
			f.posesOf(fast, fastGot, map[string]int{})
			for _, c := range f.conns[2:] {
				f.discard(c)
			}
		}
		return slowGot, fastGot, presence
	}
	run(0) // everyone ranked, the joins told

	slowGot, fastGot, _ := run(poseSlowBytes + 1)
	if len(slowGot) != poseNearCount {
		t.Errorf("a slow recipient received poses of %d members, want its %d nearest", len(slowGot), poseNearCount)
	}
	for a := range slowGot {
		var i int
		if _, err := fmt.Sscanf(a, "av_%03d", &i); err != nil || i > poseNearCount {
			t.Errorf("a slow recipient received the pose of %s, not one of its nearest", a)
		}
	}
	if len(fastGot) != members-1 {
		t.Errorf("beside a slow recipient, another received poses of %d members, want %d", len(fastGot), members-1)
	}

	// An event the recipient far behind must still receive.
	f.h.zoneChanged(fast.member.Load(), "lobby")
	slowGot, _, presence := run(poseSkipBytes + 1)
	if len(slowGot) != 0 || presence != 1 {
		t.Errorf("a recipient far behind received poses of %d members and %d presence messages, want none and 1", len(slowGot), presence)
	}
}

func TestSelectNearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 5, 33, 200, 1000} {
		for _, distinct := range []int{3, 1 << 20} {
			entries := make([]rankEntry, n)
			for i := range entries {
				entries[i] = rankEntry{d2: float64(rng.IntN(distinct)), slot: int32(i)}
			}
			sorted := slices.Clone(entries)
			slices.SortFunc(sorted, func(a, b rankEntry) int { return int(a.d2 - b.d2) })
			for _, k := range []int{0, 1, n / 3, poseNearCount, n - 1, n} {
				if k < 0 || k > n {
					continue
				}
				got := slices.Clone(entries)
				selectNearest(got, k)
				var worst float64
				for _, e := range got[:k] {
					worst = max(worst, e.d2)
				}
				for _, e := range got[k:] {
					if e.d2 < worst {
						t.Fatalf("n=%d k=%d: %v beyond the k nearest is nearer than %v within", n, k, e.d2, worst)
					}
				}
				if k > 0 && worst != sorted[k-1].d2 {
					t.Fatalf("n=%d k=%d: the k-th nearest is %v, want %v", n, k, worst, sorted[k-1].d2)
				}
				seen := map[int32]bool{}
				for _, e := range got {
					seen[e.slot] = true
				}
				if len(seen) != n {
					t.Fatalf("n=%d k=%d: selection lost entries", n, k)
				}
			}
		}
	}
}

// TestPoseFragment: what the realm sends of a pose is what a client
// decodes back to the same float32 values, hands omitted in the head-only
// form.
func TestPoseFragment(t *testing.T) {
	p := avatarPose{Head: poseJSON{Pos: [3]float64{float64(float32(0.1)), -1e-7, 12345.678}, Rot: [4]float64{0, float64(float32(0.70710677)), 0, float64(float32(0.70710677))}},
		Right: &poseJSON{Pos: [3]float64{0.3, 1.2, -0.6}, Rot: [4]float64{0, 0, 0, 1}}}
	full := appendPoseFragment(nil, encodeJSON("av_\"1"), &p, true)
	head := appendPoseFragment(nil, encodeJSON("av_\"1"), &p, false)
	var got struct {
		Avatar string      `json:"avatar"`
		H      poseJSON32  `json:"head"`
		Right  *poseJSON32 `json:"right"`
		Left   *poseJSON32 `json:"left"`
	}
	if err := json.Unmarshal(full, &got); err != nil {
		t.Fatalf("fragment %s: %v", full, err)
	}
	if got.Avatar != "av_\"1" || got.Right == nil || got.Left != nil {
		t.Fatalf("fragment %s = %+v, want avatar av_\"1 with a right hand only", full, got)
	}
	for i, v := range p.Head.Pos {
		if got.H.Pos[i] != float32(v) {
			t.Errorf("head pos[%d] = %v, want float32 %v", i, got.H.Pos[i], float32(v))
		}
	}
	if strings.Contains(string(head), "right") || !strings.HasPrefix(string(full), string(head[:len(head)-1])) {
		t.Errorf("head-only fragment %s of %s: want the same without hands", head, full)
	}
}

type poseJSON32 struct {
	Pos [3]float32 `json:"pos"`
	Rot [4]float32 `json:"rot"`
}
