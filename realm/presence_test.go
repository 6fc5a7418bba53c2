package realm

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

// wsMsg is any realm message, read loosely.
type wsMsg map[string]any

func (m wsMsg) str(k string) string { s, _ := m[k].(string); return s }

func send(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("send %s: %v", msg, err)
	}
}

// readUntil reads messages until one satisfies want, and returns it with
// the ones before it. A presence message with several events is read as
// one presence message per event, in order.
// signedBy signs msg for subject as a node of r's cluster would: the test
// stands in for a node, so it holds the cluster key.
func signedBy(r *Realm, msg *nats.Msg, subject string) *nats.Msg {
	r.clusterAuth.Sign(msg, subject, time.Now())
	return msg
}

// publishSigned publishes data on subject as a node of r's cluster.
func publishSigned(r *Realm, nc *nats.Conn, subject string, data []byte) error {
	return nc.PublishMsg(signedBy(r, &nats.Msg{Subject: subject, Data: data}, subject))
}

func readUntil(t *testing.T, ws *websocket.Conn, what string, want func(wsMsg) bool) (wsMsg, []wsMsg) {
	t.Helper()
	var before []wsMsg
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v (read before: %v)", what, err, before)
		}
		var m wsMsg
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("message %q is not JSON: %v", data, err)
		}
		for _, m := range presenceEvents(m) {
			if want(m) {
				return m, before
			}
			before = append(before, m)
		}
	}
}

// presenceEvents splits a presence message with an events list into one
// message per event; any other message is itself.
func presenceEvents(m wsMsg) []wsMsg {
	events, ok := m["events"].([]any)
	if m.str("type") != "presence" || !ok {
		return []wsMsg{m}
	}
	out := make([]wsMsg, 0, len(events))
	for _, ev := range events {
		e, _ := ev.(map[string]any)
		one := wsMsg{"type": "presence", "scene": m["scene"]}
		for k, v := range e {
			one[k] = v
		}
		out = append(out, one)
	}
	return out
}

func poseAt(x, y, z float64) string {
	b, _ := json.Marshal(map[string]any{"type": "pose", "head": map[string]any{"pos": []float64{x, y, z}, "rot": []float64{0, 0, 0, 1}}})
	return string(b)
}

func isType(typ string) func(wsMsg) bool { return func(m wsMsg) bool { return m.str("type") == typ } }

// hasPoseOf matches a poses message that carries the avatar's pose.
func hasPoseOf(avatar string) func(wsMsg) bool {
	return func(m wsMsg) bool {
		if m.str("type") != "poses" {
			return false
		}
		list, _ := m["poses"].([]any)
		for _, p := range list {
			if pm, _ := p.(map[string]any); pm["avatar"] == avatar {
				return true
			}
		}
		return false
	}
}

func joinFoundry(t *testing.T, ws *websocket.Conn) wsMsg {
	t.Helper()
	send(t, ws, `{"type":"join","scene":"foundry"}`)
	m, _ := readUntil(t, ws, "joined", isType("joined"))
	if m.str("scene") != "foundry" {
		t.Fatalf("joined = %v, want scene foundry", m)
	}
	return m
}

// TestPresenceAcrossNodes joins one avatar through each of two realm nodes
// on a 3-node NATS cluster: each sees the other join and move.
func TestPresenceAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	a, b := twoNodes(t)
	alice := newOperator(t, a, "alice")
	bob := newOperator(t, a, "bob")
	wsA := dialLive(t, a, alice.Sess.Token)
	defer wsA.Close()
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()

	joinFoundry(t, wsA)
	joinFoundry(t, wsB)
	m, _ := readUntil(t, wsA, "bob's presence join", func(m wsMsg) bool {
		return m.str("type") == "presence" && m.str("avatar") == bob.ID && m.str("event") == "join"
	})
	if m.str("scene") != "foundry" || m.str("name") != "bob" {
		t.Fatalf("presence of bob on node a = %v, want scene foundry and name bob", m)
	}

	send(t, wsA, poseAt(1, 1.6, 2))
	readUntil(t, wsB, "alice's pose on node b", hasPoseOf(alice.ID))
	send(t, wsB, poseAt(2, 1.6, 3))
	readUntil(t, wsA, "bob's pose on node a", hasPoseOf(bob.ID))

	send(t, wsB, `{"type":"leave"}`)
	readUntil(t, wsA, "bob's presence leave", func(m wsMsg) bool {
		return m.str("type") == "presence" && m.str("avatar") == bob.ID && m.str("event") == "leave"
	})
}

// TestPresenceSurvivesBadInput sends what a broken or hostile client
// might: each earns a clear error or a close with a code, and another
// member keeps receiving poses.
func TestPresenceSurvivesBadInput(t *testing.T) {
	r := startLocalRealm(t)
	poser := newOperator(t, r, "poser")
	watcher := newOperator(t, r, "watcher")
	mallory := newOperator(t, r, "mallory")
	wsP := dialLive(t, r, poser.Sess.Token)
	defer wsP.Close()
	wsW := dialLive(t, r, watcher.Sess.Token)
	defer wsW.Close()
	joinFoundry(t, wsP)
	joinFoundry(t, wsW)

	wsM := dialLive(t, r, mallory.Sess.Token)
	defer wsM.Close()
	for _, tc := range []struct {
		name, msg, code, reason string
	}{
		{"pose before join", poseAt(1, 1, 1), codeNotJoined, "join"},
		{"malformed JSON", `{"type":"join",`, codeInvalid, "JSON"},
		{"unknown type", `{"type":"teleport"}`, codeInvalid, "unknown message type"},
		{"unknown scene", `{"type":"join","scene":"atlantis"}`, codeUnknownScene, "atlantis"},
		{"pose without head", `{"type":"pose","left":{"pos":[0,0,0],"rot":[0,0,0,1]}}`, codeInvalid, "head"},
		{"pose out of range", poseAt(1e9, 0, 0), codeInvalid, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "pose out of range" {
				joinFoundry(t, wsM)
			}
			send(t, wsM, tc.msg)
			m, _ := readUntil(t, wsM, "an error", isType("error"))
			if m.str("code") != tc.code || !strings.Contains(m.str("reason"), tc.reason) {
				t.Errorf("answer to %s = %v, want code %q and a reason naming %q", tc.msg, m, tc.code, tc.reason)
			}
		})
	}

	send(t, wsP, poseAt(1, 1.6, 2))
	readUntil(t, wsW, "the poser's pose before the flood", hasPoseOf(poser.ID))

	// A flood: the first messages are answered, then the client is told it
	// is rate-limited, and closed when it does not stop.
	go func() {
		for range 400 {
			if wsM.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)) != nil {
				return
			}
		}
	}()
	if code, reason := waitClosed(t, wsM); code != closeTooManyMessages {
		t.Fatalf("flooding socket closed with %d %q, want %d", code, reason, closeTooManyMessages)
	}

	// An oversized message closes its socket with 1009.
	big := dialLive(t, r, mallory.Sess.Token)
	defer big.Close()
	send(t, big, `{"type":"ping","pad":"`+strings.Repeat("x", liveMaxMessage)+`"}`)
	if code, _ := waitClosed(t, big); code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized message closed the socket with %d, want %d", code, websocket.CloseMessageTooBig)
	}

	send(t, wsP, poseAt(2, 1.6, 2))
	readUntil(t, wsW, "the poser's pose after the abuse", hasPoseOf(poser.ID))
}

// TestZoneDenial walks a visitor from the lobby into the press bay: the
// visitor is told it was denied, and the others hear that it left the
// lobby (it stands in no zone now), never that it entered the press bay.
func TestZoneDenial(t *testing.T) {
	r := startLocalRealm(t)
	visitor := newOperator(t, r, "visitor")
	watcher := newOperator(t, r, "watcher", "operator")
	wsV := dialLive(t, r, visitor.Sess.Token)
	defer wsV.Close()
	wsW := dialLive(t, r, watcher.Sess.Token)
	defer wsW.Close()
	joinFoundry(t, wsW)
	joinFoundry(t, wsV)

	isZoneOf := func(zone string) func(wsMsg) bool {
		return func(m wsMsg) bool {
			return m.str("type") == "presence" && m.str("avatar") == visitor.ID && m.str("event") == "zone" && m.str("zone") == zone
		}
	}
	send(t, wsV, poseAt(3, 1.6, 4)) // lobby: open
	readUntil(t, wsW, "the visitor entering the lobby", isZoneOf("lobby"))

	send(t, wsV, poseAt(10, 1.6, 4)) // press bay: operators only
	m, _ := readUntil(t, wsV, "the denial", isType("error"))
	if m.str("code") != codeDenied || !strings.Contains(m.str("reason"), "press-bay") {
		t.Fatalf("answer to entering the press bay = %v, want code %q naming press-bay", m, codeDenied)
	}
	_, denied := readUntil(t, wsW, "the visitor leaving the lobby for no zone", isZoneOf(""))
	for _, m := range denied {
		if isZoneOf("press-bay")(m) {
			t.Fatalf("watcher was told the visitor entered the press bay: %v", m)
		}
	}
	if s := r.live.WhereIs("foundry", visitor.ID, ""); !s.Present || s.Zone != "" {
		t.Fatalf("after the denial the realm sees the visitor at %+v, want present in no zone", s)
	}

	send(t, wsV, poseAt(20, 1.6, 10)) // walkway: open
	_, before := readUntil(t, wsW, "the visitor entering the walkway", isZoneOf("walkway"))
	for _, m := range before {
		if isZoneOf("press-bay")(m) {
			t.Fatalf("watcher was told the visitor entered the press bay: %v", m)
		}
	}
}

// memberOf reports whether a joined snapshot lists the avatar.
func memberOf(joined wsMsg, avatar string) bool {
	members, _ := joined["members"].([]any)
	for _, mv := range members {
		if m, _ := mv.(map[string]any); m["avatar"] == avatar {
			return true
		}
	}
	return false
}

func isPresence(avatar, event string) func(wsMsg) bool {
	return func(m wsMsg) bool {
		return m.str("type") == "presence" && m.str("avatar") == avatar && m.str("event") == event
	}
}

// clusterNodeA starts a 3-node NATS cluster (its client URLs, comma
// separated) and realm node a on it, and registers operators alice and bob
// through a; where they join, and node b, are the test's.
func clusterNodeA(t *testing.T) (urls string, a *Realm, alice, bob operator) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	urls = natstest.ClusterURLs(natstest.RunCluster(t, 3))
	a = startRealm(t, Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-a"})
	return urls, a, newOperator(t, a, "alice"), newOperator(t, a, "bob")
}

// TestPresenceLateNodeAndSilentNode: alice joins through node a before
// node b runs, so b never hears her join; bob, joining through b, learns
// of her from the snapshot b asks a for, and receives her poses. Then a
// node that is only a NATS connection speaking the protocol announces a
// member and its pose, and goes silent: bob sees the member join, move
// and, once the node has missed its heartbeats, leave. That stand-in holds
// the cluster key like a node; what it sends unsigned is dropped.
func TestPresenceLateNodeAndSilentNode(t *testing.T) {
	urls, a, alice, bob := clusterNodeA(t)
	wsA := dialLive(t, a, alice.Sess.Token)
	defer wsA.Close()
	joinFoundry(t, wsA)

	b := startRealm(t, Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-b", Origins: a.origins()})
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()
	if joined := joinFoundry(t, wsB); !memberOf(joined, alice.ID) {
		readUntil(t, wsB, "alice's join, from node a's snapshot", isPresence(alice.ID, "join"))
	}
	// Node a publishes poses once it has heard node b: alice keeps moving
	// until bob sees her.
	stop := make(chan struct{})
	moving := make(chan struct{})
	go func() {
		defer close(moving)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if wsA.WriteMessage(websocket.TextMessage, []byte(poseAt(1, 1.6, 2+float64(i)*0.01))) != nil {
				return
			}
		}
	}()
	readUntil(t, wsB, "alice's pose on node b", hasPoseOf(alice.ID))
	close(stop)
	<-moving

	nc := natstest.Connect(t, urls)
	prefix := a.cfg.Prefix
	ghost := presenceEvent{"avatar": "av_ghost", "name": "ghost", "event": "join"}
	sub, err := nc.Subscribe(prefix+".presence.sync.realm-ghost", func(msg *nats.Msg) {
		reply := &nats.Msg{Subject: msg.Reply, Data: encodeJSON(map[string]any{"node": "realm-ghost", "scenes": map[string]any{"foundry": []any{map[string]any{"avatar": ghost["avatar"], "name": ghost["name"], "zone": ""}}}})}
		_ = msg.RespondMsg(signedBy(a, reply, msg.Subject))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	beating := make(chan struct{})
	stopBeating := make(chan struct{})
	go func() {
		defer close(beating)
		for {
			_ = publishSigned(a, nc, prefix+".presence.heartbeat", encodeJSON(map[string]any{"node": "realm-ghost", "scenes": map[string]int{"foundry": 1}}))
			select {
			case <-stopBeating:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	// Unsigned, as anyone on NATS could send it: dropped. The signed
	// one after it (nodes hold the cluster key) is heard; both go through
	// one subscription in order, so the first was handled, and refused,
	// by the time the second shows.
	forged := presenceEvent{"avatar": "av_forged", "name": "forged", "event": "join"}
	if err := nc.Publish(prefix+".scene.foundry.presence", encodeJSON(map[string]any{"node": "realm-ghost", "scene": "foundry", "events": []presenceEvent{forged}})); err != nil {
		t.Fatal(err)
	}
	if err := publishSigned(a, nc, prefix+".scene.foundry.presence", encodeJSON(map[string]any{"node": "realm-ghost", "scene": "foundry", "events": []presenceEvent{ghost}})); err != nil {
		t.Fatal(err)
	}
	if _, before := readUntil(t, wsB, "the ghost's join", isPresence(ghost["avatar"], "join")); slices.ContainsFunc(before, isPresence(forged["avatar"], "join")) {
		t.Fatal("an unsigned presence delta was applied")
	}
	pose := &nats.Msg{Subject: prefix + ".scene.foundry.poses", Header: nats.Header{clustermsg.NodeHeader: {"realm-ghost"}},
		Data: []byte(`{"type":"poses","scene":"foundry","poses":[{"avatar":"av_ghost","head":{"pos":[4,1.6,4],"rot":[0,0,0,1]}}]}`)}
	if err := nc.PublishMsg(signedBy(a, pose, pose.Subject)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, wsB, "the ghost's pose", hasPoseOf(ghost["avatar"]))

	close(stopBeating)
	<-beating
	readUntil(t, wsB, "the silent node's member leaving", isPresence(ghost["avatar"], "leave"))
	readUntil(t, wsA, "the silent node's member leaving node a too", isPresence(ghost["avatar"], "leave"))
}

// TestPresenceNodeStopSaysGoodbye stops node b while bob is in the scene
// through it: alice, on node a, sees bob leave. A stand-in keeps announcing
// node b with its one member afterwards, so only b's own farewell, not the
// silence of its heartbeats, can tell node a that bob left.
func TestPresenceNodeStopSaysGoodbye(t *testing.T) {
	urls, a, alice, bob := clusterNodeA(t)

	b, stopB := runRealm(t, Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-b", Origins: a.origins(), DataDir: t.TempDir()})

	wsA := dialLive(t, a, alice.Sess.Token)
	defer wsA.Close()
	joinFoundry(t, wsA)
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()
	joinFoundry(t, wsB)
	readUntil(t, wsA, "bob's join through node b", isPresence(bob.ID, "join"))

	nc := natstest.Connect(t, urls)
	standIn := make(chan struct{})
	standInDone := make(chan struct{})
	defer func() { close(standIn); <-standInDone }()
	stopB() // waits for node b to stop, and fails the test if it stopped with an error
	go func() {
		defer close(standInDone)
		for {
			_ = publishSigned(a, nc, a.cfg.Prefix+".presence.heartbeat", encodeJSON(map[string]any{"node": "realm-b", "scenes": map[string]int{"foundry": 1}}))
			select {
			case <-standIn:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	readUntil(t, wsA, "bob leaving as node b stops", isPresence(bob.ID, "leave"))
}
