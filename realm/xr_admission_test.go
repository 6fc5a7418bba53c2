package realm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// streamer is a raw realm WebSocket that sends frame messages and knows
// when the realm has read them.
type streamer struct {
	t   *testing.T
	ws  *websocket.Conn
	seq uint32
}

func newStreamer(t *testing.T, r *Realm, name string) (*streamer, sessionAnswer) {
	t.Helper()
	sess := newClient(t, r).Register(webauthntest.New(), name)
	ws := dialLive(t, r, sess.Token)
	t.Cleanup(func() { ws.Close() })
	return &streamer{t: t, ws: ws}, sess
}

// frames sends messages frame messages of ten frames each, then a ping,
// and returns the error messages the realm sent before its pong. The
// realm reads a connection's messages in order, so by the pong it has
// handled every frame message.
func (s *streamer) frames(messages int) []realmtest.LiveMsg {
	s.t.Helper()
	for range messages {
		msg, err := vr.AppendMessage(nil, swayFrames(10, s.seq, 72))
		if err != nil {
			s.t.Fatal(err)
		}
		s.seq += 10
		if err := s.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			s.t.Fatal(err)
		}
	}
	send(s.t, s.ws, `{"type":"ping"}`)
	_, before := readUntil(s.t, s.ws, "pong", isType("pong"))
	var errs []realmtest.LiveMsg
	for _, m := range before {
		if m.Str("type") == "error" {
			errs = append(errs, m)
		}
	}
	return errs
}

// waitNoStream waits until the session's stream on the node is gone.
func waitNoStream(t *testing.T, r *Realm, sessionID string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, _, ok := r.xr.StreamCounts(sessionID); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still streams on the node after its connection closed", sessionID)
		}
	}
}

// sessionTrust is the session's trust state and score as the node
// assesses it.
func sessionTrust(t *testing.T, r *Realm, sessionID string) [2]any {
	t.Helper()
	sess, err := r.sessions.Get(t.Context(), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	a := r.trust.Assess(t.Context(), sess)
	return [2]any{a.State, a.Score}
}

// TestXRFullNodeRefusesNewStreams: a node at --max-xr-streams opens no
// stream for a new session. Its frames are dropped and it is told once,
// with the node-busy code and when to retry, however many messages it
// sends meanwhile; the stream already open keeps being read; once that
// stream ends and the retry time has come, the refused session's frames
// open its stream. The realm's clock is manual, so "once a second" and
// "retry after" are exact.
func TestXRFullNodeRefusesNewStreams(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r := startRealm(t, Config{Listen: "localhost:0", Clock: clk, MaxXRStreams: 1})

	first, firstSess := newStreamer(t, r, "first-in")
	if errs := first.frames(1); len(errs) != 0 {
		t.Fatalf("the first stream on a node with room was refused: %v", errs)
	}
	before, _, ok := r.xr.StreamCounts(firstSess.Session.ID)
	if !ok || before == 0 {
		t.Fatalf("the first stream accepted %d frames (streaming %v), want some", before, ok)
	}

	second, secondSess := newStreamer(t, r, "second-in")
	trustBefore := sessionTrust(t, r, secondSess.Session.ID)
	errs := second.frames(5)
	if len(errs) != 1 {
		t.Fatalf("five frame messages to a full node got %d error messages, want exactly one: %v", len(errs), errs)
	}
	e := errs[0]
	if e.Str("code") != "node-busy" || !strings.Contains(e.Str("reason"), "at capacity") || !strings.Contains(e.Str("reason"), "1 XR streams") || e["retry_after"] != float64(15) {
		t.Fatalf("refusal = %v, want code node-busy, a reason naming the capacity of 1 and retry_after 15", e)
	}
	if _, _, ok := r.xr.StreamCounts(secondSess.Session.ID); ok {
		t.Fatal("a refused session has a stream on the node")
	}
	text := metricsText(t, r)
	for _, want := range []string{
		`zerorealm_xr_streams_refused_total{reason="capacity"} 1`,
		`zerorealm_xr_streams_refused_total{reason="behind"} 0`,
		`zerorealm_xr_messages_total{outcome="node-busy",transport="websocket"} 5`,
		`zerorealm_xr_streams 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(text, "zerorealm_xr_"))
		}
	}
	// The refusal did not touch the refused session's trust.
	if got := sessionTrust(t, r, secondSess.Session.ID); got != trustBefore {
		t.Fatalf("the refused session's trust went from %+v to %+v, want it untouched", trustBefore, got)
	}

	if errs := first.frames(2); len(errs) != 0 {
		t.Fatalf("the open stream was refused while the node was full: %v", errs)
	}
	if after, _, _ := r.xr.StreamCounts(firstSess.Session.ID); after <= before {
		t.Fatalf("the open stream accepted %d frames, then %d: it stopped being read while the node was full", before, after)
	}

	first.ws.Close()
	waitNoStream(t, r, firstSess.Session.ID)
	// Room again, but the refused client was told to wait: before its
	// retry time its frames are still dropped, without a second error
	// within the second.
	if errs := second.frames(1); len(errs) != 0 {
		t.Fatalf("frames within a second of the refusal got %v, want nothing", errs)
	}
	if _, _, ok := r.xr.StreamCounts(secondSess.Session.ID); ok {
		t.Fatal("a refused session opened its stream before the retry time it was given")
	}
	clk.Advance(15 * time.Second)
	if errs := second.frames(1); len(errs) != 0 {
		t.Fatalf("frames after the retry time, with room on the node, got %v", errs)
	}
	if n, _, ok := r.xr.StreamCounts(secondSess.Session.ID); !ok || n == 0 {
		t.Fatalf("after the retry time the session's stream accepted %d frames (streaming %v), want it open", n, ok)
	}
}

// TestXRFullNodeRefusesWebRTCOffers: on a full node a real pion peer's
// offer is answered with node-busy instead of an SDP answer, and no peer
// connection is made; once the node has room, the same offer is answered.
func TestXRFullNodeRefusesWebRTCOffers(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0", MaxXRStreams: 1})
	first, firstSess := newStreamer(t, r, "holds-the-place")
	if errs := first.frames(1); len(errs) != 0 {
		t.Fatalf("the first stream was refused: %v", errs)
	}

	sess := newClient(t, r).Register(webauthntest.New(), "offers-late")
	ws := dialLive(t, r, sess.Token)
	defer ws.Close()
	pc := loopbackPeer(t)
	if _, err := pc.CreateDataChannel("xr", nil); err != nil {
		t.Fatal(err)
	}
	msg := offerMessage(t, pc)

	send(t, ws, msg)
	refusal, before := readUntil(t, ws, "the refusal of the offer", func(m realmtest.LiveMsg) bool {
		return m["type"] == "error" || m["type"] == "webrtc.answer"
	})
	if refusal.Str("code") != "node-busy" || refusal["retry_after"] != float64(15) || !strings.Contains(refusal.Str("reason"), "at capacity") {
		t.Fatalf("offer to a full node answered %v (after %v), want a node-busy error with retry_after 15", refusal, before)
	}
	if n := r.xr.PeerConnections(); n != 0 {
		t.Fatalf("a refused offer left %d peer connections, want none", n)
	}
	if !strings.Contains(metricsText(t, r), `zerorealm_xr_streams_refused_total{reason="capacity"} 1`+"\n") {
		t.Error("the refused offer was not counted")
	}

	first.ws.Close()
	waitNoStream(t, r, firstSess.Session.ID)
	send(t, ws, msg)
	if answer, _ := readUntil(t, ws, "the answer", func(m realmtest.LiveMsg) bool {
		return m["type"] == "error" || m["type"] == "webrtc.answer"
	}); answer.Str("type") != "webrtc.answer" {
		t.Fatalf("offer to a node with room answered %v, want webrtc.answer", answer)
	}
}

// TestXRBehindNodeShedsItsLateStreams: forty streams over sockets whose
// waits the kernel stamped (FramesHeld). One stream whose frames wait 3 s
// on a node that keeps up with the rest is left alone. When every socket
// waits 3 s, the node is behind, and it closes streams at their next late
// message, one a second on a node of forty (2 % of its streams a
// second, at least one): node-busy with a reason naming the wait and a
// retry time of 15 to 30 s, the session's trust untouched, the stream
// gone. Once the node keeps up again and the retry time has passed, the
// shed streams open again.
func TestXRBehindNodeShedsItsLateStreams(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r, hs := lateHeadsets(t, clk)
	sent := 0
	// rounds sends every headset its next message, each having waited
	// held(i) in its socket, a message's worth of time (8 frames at 72 Hz)
	// after the previous round, for d of the headsets' time.
	rounds := func(d time.Duration, held func(i int) time.Duration) {
		for range int(d.Seconds() * 72 / lateFrames) {
			clk.Advance(time.Second * lateFrames / 72)
			for i, h := range hs {
				h.link.FramesHeld(xr.TransportWebSocket, h.msgs[sent], held(i))
			}
			sent++
		}
	}
	open := func(h *lateHeadset) bool { _, _, ok := r.xr.StreamCounts(h.id); return ok }

	rounds(5*time.Second, func(i int) time.Duration {
		if i == 0 {
			return 3 * time.Second
		}
		return 0
	})
	for _, h := range hs {
		if !open(h) || len(h.conn.refusals()) != 0 {
			t.Fatalf("stream %s shed (refusals %v) by a node that keeps up with all but one socket", h.id, h.conn.refusals())
		}
	}
	trustBefore := make(map[string][2]any)
	for _, h := range hs {
		trustBefore[h.id] = sessionTrust(t, r, h.id)
	}

	rounds(10*time.Second, func(int) time.Duration { return 3 * time.Second })
	var shed []*lateHeadset
	for _, h := range hs {
		busy := h.conn.refusals()
		switch {
		case open(h) && len(busy) != 0:
			t.Errorf("stream %s still open after being told %v", h.id, busy)
		case open(h):
		case len(busy) == 0:
			t.Errorf("stream %s closed without a word", h.id)
		default:
			// Its later messages are refused with the same error (the
			// realm's socket says so at most once a second).
			shed = append(shed, h)
			b := busy[0]
			if !errors.Is(b, xr.ErrNodeBusy) || !strings.Contains(b.Reason, "waited 3s in its socket") || b.RetryAfter < 15*time.Second || b.RetryAfter >= 30*time.Second {
				t.Errorf("stream %s was told %+v, want node-busy naming its 3 s wait, retry in 15 to 30 s", h.id, b)
			}
			if got := sessionTrust(t, r, h.id); got != trustBefore[h.id] {
				t.Errorf("shed session %s's trust went from %v to %v, want it untouched", h.id, trustBefore[h.id], got)
			}
		}
	}
	retries := map[time.Duration]bool{}
	for _, h := range shed {
		retries[h.conn.refusals()[0].RetryAfter] = true
	}
	if len(retries) < 2 {
		t.Errorf("the %d shed streams were all told the same retry time %v: they would all come back in the same second", len(shed), retries)
	}
	if len(shed) < 9 || len(shed) > 12 {
		t.Fatalf("a node of %d streams, 10 s behind all of them, shed %d, want one a second (9 to 12)", lateStreams, len(shed))
	}
	if text := metricsText(t, r); !strings.Contains(text, fmt.Sprintf("zerorealm_xr_streams_shed_total %d\n", len(shed))) {
		t.Errorf("metrics lack %d shed streams:\n%s", len(shed), grepLines(text, "zerorealm_xr_streams"))
	}

	// Until its retry time a shed stream's frames are refused with the
	// error it was shed with, not asked about again; once the node keeps
	// up and the retry time has passed, it opens again.
	rounds(time.Second, func(int) time.Duration { return 0 })
	for _, h := range shed {
		busy := h.conn.refusals()
		if last := busy[len(busy)-1]; open(h) || last.Reason != busy[0].Reason {
			t.Errorf("shed stream %s a second later: open %v, told %q, want still closed by its shedding", h.id, open(h), last.Reason)
		}
	}
	rounds(12*time.Second, func(int) time.Duration { return 0 })
	clk.Advance(30 * time.Second)
	rounds(time.Second, func(int) time.Duration { return 0 })
	for _, h := range shed {
		if !open(h) {
			t.Errorf("shed stream %s did not open again after its retry time", h.id)
		}
	}
}

// TestXRBehindNodeShedsLateUnstampedStreams: streams whose frames carry
// no receive stamp (a data channel's, or a socket on a system without
// stamps) are shed by how far their own offsets climbed. Forty of them
// are read later and later, half a second more each second, as a node
// falling behind reads them: the node's estimate sees it, none is
// suspended for its timing, and from 2 s late they are shed, one a
// second, told how late their frames arrive.
func TestXRBehindNodeShedsLateUnstampedStreams(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r, hs := lateHeadsets(t, clk)
	for k := range 90 { // 10 s of the headsets' time, read in 15 s
		clk.Advance(time.Second * lateFrames * 3 / 2 / 72)
		for _, h := range hs {
			h.link.Frames(xr.TransportWebSocket, h.msgs[k])
		}
	}
	shed := 0
	for _, h := range hs {
		busy := h.conn.refusals()
		_, _, open := r.xr.StreamCounts(h.id)
		switch {
		case open && len(busy) == 0:
		case !open && len(busy) > 0 && strings.Contains(busy[0].Reason, "frames arrive") && strings.Contains(busy[0].Reason, "later than they did at best"):
			shed++
		default:
			t.Errorf("stream %s: open %v, told %v; want open and untold, or shed and told how late its frames arrive", h.id, open, busy)
		}
	}
	if shed < 4 || shed > 12 {
		t.Errorf("shed %d of %d streams read later and later, want about one a second once they were 2 s late (4 to 12)", shed, lateStreams)
	}
	if text := metricsText(t, r); strings.Contains(text, `zerorealm_xr_events_total{kind="liveness"}`) {
		t.Errorf("a liveness event on a node whose late reads its estimate discounts:\n%s", grepLines(text, "zerorealm_xr_events_total"))
	}
}

// TestXRBehindNodeShedsAHeldBackStreamAtOnce: on a node that reads forty
// streams later and later, one stream's frames also stop for 7.5 s of
// the node's time and then go on from where they stopped, 5 s of motion
// behind (its sender held them back, as a congested peer connection's
// does): a climb the node's read lag does not explain, near what the
// clock check takes for a slow device. That stream is shed at once,
// though the others, earlier in each round, use up the pace of one shed a
// second; the others are shed at that pace, and no session is suspended.
func TestXRBehindNodeShedsAHeldBackStreamAtOnce(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r, hs := lateHeadsets(t, clk)
	others, held := hs[:len(hs)-1], hs[len(hs)-1]
	const stopAt, resumeAt = 12, 57 // rounds: 45 rounds are 7.5 s of the node's time
	next := 0
	for k := range 90 { // 10 s of the headsets' time, read in 15 s
		clk.Advance(time.Second * lateFrames * 3 / 2 / 72)
		for _, h := range others {
			h.link.Frames(xr.TransportWebSocket, h.msgs[k])
		}
		if k < stopAt || k >= resumeAt {
			held.link.Frames(xr.TransportWebSocket, held.msgs[next])
			next++
		}
		if k == resumeAt {
			if _, _, open := r.xr.StreamCounts(held.id); open {
				t.Fatal("the held-back stream, 5 s of motion behind the others on a node that is behind, is still open after its first message")
			}
			busy := held.conn.refusals()
			if len(busy) == 0 || !strings.Contains(busy[0].Reason, "later than they did at best") {
				t.Fatalf("the held-back stream was told %v, want node-busy naming how late its frames arrive", busy)
			}
		}
	}
	shed := 0
	for _, h := range others {
		if _, _, open := r.xr.StreamCounts(h.id); !open {
			shed++
		}
	}
	if shed < 4 || shed > 12 {
		t.Errorf("shed %d of the %d others, want about one a second once they were 2 s late (4 to 12)", shed, len(others))
	}
	if text := metricsText(t, r); strings.Contains(text, `zerorealm_xr_events_total{kind="liveness"}`) {
		t.Errorf("a liveness event:\n%s", grepLines(text, "zerorealm_xr_events_total"))
	}
}

const lateStreams, lateFrames = 40, 8

// lateHeadset is one of lateHeadsets.
type lateHeadset struct {
	id   string
	conn *busyConn
	link *xr.Link
	msgs [][]byte
}

// lateHeadsets starts a realm on clk and attaches forty signed-in
// sessions' XR links to it, each with 300 messages of its own synthetic
// person's motion, 8 frames at 72 Hz each.
func lateHeadsets(t *testing.T, clk *clock.Manual) (*Realm, []*lateHeadset) {
	t.Helper()
	// Forty sign-ups from one address at once: no ceremony limit.
	r := startRealm(t, Config{Listen: "localhost:0", Clock: clk, CeremonyRate: -1})
	var hs []*lateHeadset
	for i := range lateStreams {
		sess := newClient(t, r).Register(webauthntest.New(), fmt.Sprintf("late-%d", i))
		s, err := r.sessions.Authenticate(t.Context(), sess.Token)
		if err != nil {
			t.Fatal(err)
		}
		h := &lateHeadset{id: s.ID, conn: &busyConn{xrBenchConn: xrBenchConn{sess: s, send: make(chan []byte, 1024)}}}
		h.link = r.xr.Attach(h.conn)
		t.Cleanup(h.link.End)
		h.msgs = synthMessages(t, int64(100+i), 300, lateFrames)
		hs = append(hs, h)
	}
	return r, hs
}

// busyConn is an xrBenchConn that keeps the node-busy errors it is told.
type busyConn struct {
	xrBenchConn
	busy heard[*xr.BusyError]
}

func (c *busyConn) PushBusy(b *xr.BusyError) { c.busy.add(b) }

func (c *busyConn) refusals() []*xr.BusyError { return c.busy.all() }

// heard is what a test's client was told, in order: added to by the
// goroutine that hears it, read by the test.
type heard[T any] struct {
	mu    sync.Mutex
	items []T
}

func (h *heard[T]) add(v T) {
	h.mu.Lock()
	h.items = append(h.items, v)
	h.mu.Unlock()
}

func (h *heard[T]) all() []T {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.items)
}

// TestXRBehindNodeShedsDataChannelsOverRealPeers is the shedding of
// unstamped streams end to end: forty headsets stream through the Go SDK
// over real pion data channels on loopback, and the node reads their
// frames later and later (its clock runs half again as fast as their
// frames' time). From 2 s late it sheds them, one a second: each shed
// client is told node-busy, naming how late its frames arrive, with a
// retry time of 15 to 29 s, and its peer connection and data channel stay
// open on both ends; its trust is untouched and no liveness event is
// raised. The node then drains its backlog and keeps up; frames a shed
// client sends before its retry time are refused unread. After it, the
// shed clients send on the same channels, with no new offer, and their
// streams open again and are reported to them as before.
//
// Each round moves the node's clock, has every headset that streams send
// its next message and waits until the node has read them all, so the
// time each message is read at is exact.
//
// It runs twice: on a shared UDP port, where data channels carry no
// receive stamp, and on ports of their own, stamped, where the message's
// wait since its peer connection's newest datagram is short however late
// its frames arrive: as when a peer connection's flow control holds them
// at the sender while the node reads late, they arrive late rather than
// wait in the socket, and the offsets' climb sheds them all the same.
func TestXRBehindNodeShedsDataChannelsOverRealPeers(t *testing.T) {
	t.Run("shared port, unstamped", func(t *testing.T) { testShedsDataChannels(t, true) })
	t.Run("ports of their own, stamped", func(t *testing.T) { testShedsDataChannels(t, false) })
}

func testShedsDataChannels(t *testing.T, sharedPort bool) {
	clk := clock.NewManual(time.Now())
	r, hs := webrtcHeadsets(t, clk, sharedPort)
	var (
		start   = clk.Now()
		step    int           // messages each headset has had to send
		at      time.Duration // the node's time since start
		refused int           // messages sent to be refused
	)
	busyMessages := func() float64 {
		v, _ := realmtest.Metric(t, r.URL(), `zerorealm_xr_messages_total{outcome="node-busy",transport="webrtc"}`)
		return v
	}
	busyBefore := busyMessages()
	open := func(h *webrtcHeadset) bool { _, _, ok := r.xr.StreamCounts(h.id); return ok }
	// round reads every headset's next message pace times its own time
	// after the previous round's: over 1 the node falls behind, under 1
	// it drains its backlog. A shed headset pauses, as it was told,
	// unless early has it send before its retry time; its message is
	// then refused unread.
	round := func(pace float64, early bool) {
		t.Helper()
		at += time.Duration(pace * float64(webrtcStep))
		clk.Advance(start.Add(at).Sub(clk.Now()))
		for _, h := range hs {
			if h.shed && !early {
				continue
			}
			if h.shed {
				refused++
			} else {
				h.frames += webrtcFrames
			}
			if err := h.cl.Send(h.batches[step]); err != nil {
				t.Fatalf("headset %s: Send = %v", h.id, err)
			}
		}
		step++
		eventually(t, fmt.Sprintf("the node reading round %d: every frame counted, or the stream shed and its headset told; a shed headset's message refused", step), func() bool {
			for _, h := range hs {
				if !h.shed && !h.readOrShed(r) {
					return false
				}
			}
			// A shed stream opened again before its retry time is
			// reported below, not waited for here.
			return !early || busyMessages() == busyBefore+float64(refused) || slices.ContainsFunc(hs, func(h *webrtcHeadset) bool { return h.shed && open(h) })
		})
		for _, h := range hs {
			if !h.shed && len(h.refusals()) > h.told {
				h.shed = true
			}
		}
	}
	// channelsOpen checks the peer connections and data channels on both
	// ends: the node holds every one it answered, and each client's is
	// connected and open.
	channelsOpen := func(when string) {
		t.Helper()
		if n := r.xr.PeerConnections(); n != webrtcStreams {
			t.Errorf("%s: the node holds %d peer connections, want all %d", when, n, webrtcStreams)
		}
		for _, h := range hs {
			if peer, channel := h.cl.WebRTCState(); peer != "connected" || channel != "open" {
				t.Errorf("%s: headset %s's peer connection is %s and its data channel %s, want connected and open", when, h.id, peer, channel)
			}
		}
	}
	trustBefore := map[string][2]any{}
	for _, h := range hs {
		trustBefore[h.id] = sessionTrust(t, r, h.id)
	}

	// Behind: 6 s of the headsets' time read in 9 s, so that they run up
	// to 3 s late; then the node drains its backlog, 4 s of theirs in 1 s.
	for range 27 {
		round(1.5, false)
	}
	for range 18 {
		round(0.25, false)
	}
	var shed []*webrtcHeadset
	for _, h := range hs {
		busy := h.refusals()
		switch {
		case !h.shed && open(h):
		case !h.shed || open(h):
			t.Errorf("headset %s: stream open %v, told %v; want open and untold, or closed and told", h.id, open(h), busy)
		default:
			shed = append(shed, h)
			b := busy[0]
			if !errors.Is(b, vr.ErrNodeBusy) || !strings.Contains(b.Reason, "frames arrive") || !strings.Contains(b.Reason, "later than they did at best") ||
				b.RetryAfter < 15*time.Second || b.RetryAfter >= 30*time.Second {
				t.Errorf("shed headset %s was told %+v, want node-busy naming how late its frames arrive, retry in 15 to 29 s", h.id, b)
			}
			if got := sessionTrust(t, r, h.id); got != trustBefore[h.id] {
				t.Errorf("shed session %s's trust went from %v to %v, want it untouched", h.id, trustBefore[h.id], got)
			}
		}
	}
	// 2 s late from the node's sixth second, the streams are shed one a
	// second (2 % of forty, at least one) until the node has drained
	// them under 2 s late, in its tenth.
	if len(shed) < 2 || len(shed) > 6 {
		t.Fatalf("shed %d of %d streams read up to 3 s late, want one a second once they were 2 s late (2 to 6)", len(shed), webrtcStreams)
	}
	text := metricsText(t, r)
	if !strings.Contains(text, fmt.Sprintf("zerorealm_xr_streams_shed_total %d\n", len(shed))) {
		t.Errorf("metrics lack %d shed streams:\n%s", len(shed), grepLines(text, "zerorealm_xr_streams"))
	}
	channelsOpen("once shed")

	// The node keeps up again, and the shed clients send before their
	// retry time: refused unread, told at most once a second with the
	// error they were shed with, their channels still open.
	for range 9 {
		round(1, true)
	}
	if lag, _ := realmtest.Metric(t, r.URL(), "zerorealm_xr_node_read_lag_seconds"); lag >= 0.1 {
		t.Fatalf("the node's read lag is %.3fs after it drained its backlog, want it caught up (under 0.1s)", lag)
	}
	for _, h := range shed {
		busy := h.refusals()
		if open(h) || len(busy) < 2 {
			t.Errorf("shed headset %s sending before its retry time: stream open %v, told %d times, want refused and told again", h.id, open(h), len(busy))
		}
		for _, b := range busy[1:] {
			if b.Reason != busy[0].Reason || b.RetryAfter > busy[0].RetryAfter {
				t.Errorf("shed headset %s, before its retry time, was told %+v, after %+v: want what it was shed with", h.id, b, busy[0])
			}
		}
	}
	if t.Failed() {
		t.FailNow() // what follows needs the shed streams closed until their retry time
	}
	channelsOpen("while refused")

	// Every headset pauses for 30 s, past every retry time, its device
	// clock running on, and sends again: the shed ones on the channels
	// they were shed on.
	at += 30 * time.Second
	resumed := start.Add(at)
	for _, h := range hs {
		for _, batch := range h.batches[step:] {
			for j := range batch {
				batch[j].TimeUS += uint64(30 * time.Second / time.Microsecond)
			}
		}
	}
	for _, h := range shed {
		h.shed, h.frames, h.told = false, 0, len(h.refusals())
	}
	for range 5 {
		round(1, false)
	}
	for _, h := range shed {
		if n, _, ok := r.xr.StreamCounts(h.id); !ok || n == 0 || h.shed {
			t.Errorf("shed headset %s after its retry time: stream open %v with %d frames accepted, told %v; want it streaming again", h.id, ok, n, h.refusals()[h.told:])
			continue
		}
		eventually(t, "a status of the stream opened again", func() bool { return h.statusSince(resumed) })
	}
	channelsOpen("streaming again")
	text = metricsText(t, r)
	for _, want := range []string{
		fmt.Sprintf("zerorealm_xr_peer_connections_opened_total %d\n", webrtcStreams),
		fmt.Sprintf("zerorealm_xr_streams %d\n", webrtcStreams),
		fmt.Sprintf("zerorealm_xr_streams_shed_total %d\n", len(shed)),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(text, "zerorealm_xr_"))
		}
	}
	if strings.Contains(text, `zerorealm_xr_events_total{kind="liveness"}`) {
		t.Errorf("a liveness event on a node whose late reads its estimate discounts:\n%s", grepLines(text, "zerorealm_xr_events_total"))
	}
}

// webrtcStreams headsets stream webrtcFrames frames a message at 72 Hz,
// a message every webrtcStep of their own time.
const (
	webrtcStreams = 40
	webrtcFrames  = 16
	webrtcStep    = time.Second * webrtcFrames / 72
)

// webrtcHeadset is one of webrtcHeadsets: an SDK client streaming over
// WebRTC, and what the test knows of it.
type webrtcHeadset struct {
	id      string
	cl      *vr.Client
	batches [][]vr.Frame
	// shed: told node-busy, so it pauses; frames is what it sent since
	// its stream opened; told is how many refusals came before that.
	shed   bool
	frames int
	told   int

	busy     heard[*vr.RefusalError]
	statuses heard[vr.Status]
}

// webrtcHeadsets starts a realm on clk and connects forty signed-in
// sessions through the Go SDK over WebRTC, each with sixty messages of
// its own synthetic person's motion. With sharedPort the data channels
// share one UDP port and carry no receive stamp, so the node dates their
// messages by its (manual) clock; otherwise each peer connection has
// sockets of its own, and a message is dated by the manual clock less
// its wait since the newest datagram, which the kernel measures on the
// wall clock: short, since the test waits for every read. Either way the
// manual clock moves how late the frames arrive.
func webrtcHeadsets(t *testing.T, clk *clock.Manual, sharedPort bool) (*Realm, []*webrtcHeadset) {
	t.Helper()
	cfg := Config{Listen: "localhost:0", Clock: clk, CeremonyRate: -1}
	if sharedPort {
		cfg.WebRTCUDPPort = freeUDPPort(t)
	}
	r := startRealm(t, cfg)
	hs := make([]*webrtcHeadset, webrtcStreams)
	tokens := make([]string, webrtcStreams)
	for i := range hs {
		sess := newClient(t, r).Register(webauthntest.New(), fmt.Sprintf("webrtc-%d", i))
		hs[i] = &webrtcHeadset{id: sess.Session.ID, batches: synthBatches(int64(200+i), 60, webrtcFrames)}
		tokens[i] = sess.Token
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make([]error, webrtcStreams)
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Go(func() {
			h.cl, errs[i] = vr.Dial(ctx, vr.Config{URL: r.URL(), Token: tokens[i], Transport: vr.WebRTC, Logger: testLogger(t),
				OnRefusal: h.refused, OnStatus: h.statuses.add})
		})
	}
	wg.Wait()
	for i, h := range hs {
		if errs[i] != nil {
			t.Fatalf("vr.Dial(webrtc) = %v", errs[i])
		}
		t.Cleanup(func() { h.cl.Close() })
	}
	return r, hs
}

func (h *webrtcHeadset) refused(e *vr.RefusalError) {
	if e.Code == vr.CodeNodeBusy {
		h.busy.add(e)
	}
}

func (h *webrtcHeadset) refusals() []*vr.RefusalError { return h.busy.all() }

// statusSince reports whether the realm told the headset of its stream,
// with frames accepted over WebRTC, as of at or later.
func (h *webrtcHeadset) statusSince(at time.Time) bool {
	return slices.ContainsFunc(h.statuses.all(), func(s vr.Status) bool {
		return !s.At.Before(at) && s.FramesAccepted > 0 && s.Transport == "webrtc"
	})
}

// readOrShed reports whether the node has read every frame the headset
// sent into its stream, or has shed the stream and told the headset so.
func (h *webrtcHeadset) readOrShed(r *Realm) bool {
	acc, rej, ok := r.xr.StreamCounts(h.id)
	if !ok {
		return len(h.refusals()) > h.told
	}
	n := int(acc)
	for _, c := range rej {
		n += int(c)
	}
	return n == h.frames
}

// freeUDPPort is a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
