package clustertest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestPresenceAcrossNodes joins one avatar through each of two realm nodes
// on a 3-node NATS cluster: each sees the other join and move.
func TestPresenceAcrossNodes(t *testing.T) {
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
		return m.Str("type") == "presence" && m.Str("avatar") == bob.ID && m.Str("event") == "join"
	})
	if m.Str("scene") != "foundry" || m.Str("name") != "bob" {
		t.Fatalf("presence of bob on node a = %v, want scene foundry and name bob", m)
	}

	send(t, wsA, poseAt(1, 1.6, 2))
	readUntil(t, wsB, "alice's pose on node b", hasPoseOf(alice.ID))
	send(t, wsB, poseAt(2, 1.6, 3))
	readUntil(t, wsA, "bob's pose on node a", hasPoseOf(bob.ID))

	send(t, wsB, `{"type":"leave"}`)
	readUntil(t, wsA, "bob's presence leave", func(m wsMsg) bool {
		return m.Str("type") == "presence" && m.Str("avatar") == bob.ID && m.Str("event") == "leave"
	})
}

// clusterNodeA starts a 3-node NATS cluster (its client URLs, comma
// separated) and realm node a on it, on clk (the system's if nil), and
// registers operators alice and bob through a; where they join, and node
// b, are the test's.
func clusterNodeA(t *testing.T, clk clock.Clock) (urls string, a *realm.Realm, alice, bob realmtest.Operator) {
	t.Helper()
	_, list := nodes.Cluster(t)
	urls = strings.Join(list, ",")
	a = startRealm(t, realm.Config{Listen: "localhost:0", NATS: list, Node: "realm-a", Clock: clk})
	return urls, a, newOperator(t, a, "alice"), newOperator(t, a, "bob")
}

// TestPresenceLateNodeAndSilentNode: alice joins through node a before
// node b runs, so b never hears her join; bob, joining through b, learns
// of her from the snapshot b asks a for, and receives her poses. Then a
// node that is only a NATS connection speaking the protocol announces a
// member and its pose, and goes silent: bob sees the member join, move
// and, once the node has missed its heartbeats, leave. That stand-in holds
// the cluster key like a node; what it sends unsigned is dropped.
//
// Both nodes and the stand-in's signed messages keep time on one manual
// clock, which stands still until the stand-in is silent; the test then
// moves it past the expiry instead of waiting it out.
func TestPresenceLateNodeAndSilentNode(t *testing.T) {
	clk := clock.NewManual(time.Now())
	urls, a, alice, bob := clusterNodeA(t, clk)
	wsA := dialLive(t, a, alice.Sess.Token)
	defer wsA.Close()
	joinFoundry(t, wsA)

	b := startRealm(t, realm.Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-b", Origins: realmtest.Probe(a).Origins(), Clock: clk})
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()
	if joined := joinFoundry(t, wsB); !realmtest.MemberOf(joined, alice.ID) {
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
	prefix := realmtest.Probe(a).Prefix
	ghost := realmtest.PresenceEvent{"avatar": "av_ghost", "name": "ghost", "event": "join"}
	sub, err := nc.Subscribe(prefix+".presence.sync.realm-ghost", func(msg *nats.Msg) {
		reply := &nats.Msg{Subject: msg.Reply, Data: realmtest.EncodeJSON(map[string]any{"node": "realm-ghost", "scenes": map[string]any{"foundry": []any{map[string]any{"avatar": ghost["avatar"], "name": ghost["name"], "zone": ""}}}})}
		_ = msg.RespondMsg(realmtest.SignedBy(a, reply, msg.Subject))
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
			_ = realmtest.PublishSigned(a, nc, prefix+".presence.heartbeat", realmtest.EncodeJSON(map[string]any{"node": "realm-ghost", "scenes": map[string]int{"foundry": 1}}))
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
	forged := realmtest.PresenceEvent{"avatar": "av_forged", "name": "forged", "event": "join"}
	if err := nc.Publish(prefix+".scene.foundry.presence", realmtest.EncodeJSON(map[string]any{"node": "realm-ghost", "scene": "foundry", "events": []realmtest.PresenceEvent{forged}})); err != nil {
		t.Fatal(err)
	}
	if err := realmtest.PublishSigned(a, nc, prefix+".scene.foundry.presence", realmtest.EncodeJSON(map[string]any{"node": "realm-ghost", "scene": "foundry", "events": []realmtest.PresenceEvent{ghost}})); err != nil {
		t.Fatal(err)
	}
	if _, before := readUntil(t, wsB, "the ghost's join", isPresence(ghost["avatar"], "join")); slices.ContainsFunc(before, isPresence(forged["avatar"], "join")) {
		t.Fatal("an unsigned presence delta was applied")
	}
	pose := &nats.Msg{Subject: prefix + ".scene.foundry.poses", Header: nats.Header{clustermsg.NodeHeader: {"realm-ghost"}},
		Data: []byte(`{"type":"poses","scene":"foundry","poses":[{"avatar":"av_ghost","head":{"pos":[4,1.6,4],"rot":[0,0,0,1]}}]}`)}
	if err := nc.PublishMsg(realmtest.SignedBy(a, pose, pose.Subject)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, wsB, "the ghost's pose", hasPoseOf(ghost["avatar"]))

	close(stopBeating)
	<-beating
	// The stand-in was last heard at the clock's reading, as were nodes a
	// and b. The clock moves past the expiry in two steps, each shorter
	// than it, and a and b hear each other's heartbeats in between, so
	// only the stand-in falls silent for longer than the expiry.
	const step = 2 * time.Second // expiry 3.5 s: one step is under it, two over
	clk.Advance(step)
	if !slices.Contains(realmtest.Probe(b).LivePeers(), "realm-ghost") {
		t.Fatalf("node b took the stand-in for dead %v after its last heartbeat", step)
	}
	heardSince := func(n *realm.Realm, peer string) bool {
		return !realmtest.Probe(n).PeersHeard()[peer].Before(clk.Now())
	}
	eventually(t, "nodes a and b hearing each other at the moved clock", func() bool {
		return heardSince(a, "realm-b") && heardSince(b, "realm-a")
	})
	clk.Advance(step)
	readUntil(t, wsB, "the silent node's member leaving", isPresence(ghost["avatar"], "leave"))
	readUntil(t, wsA, "the silent node's member leaving node a too", isPresence(ghost["avatar"], "leave"))
}

// TestPresenceNodeStopSaysGoodbye stops node b while bob is in the scene
// through it: alice, on node a, sees bob leave. A stand-in keeps announcing
// node b with its one member afterwards, so only b's own farewell, not the
// silence of its heartbeats, can tell node a that bob left.
func TestPresenceNodeStopSaysGoodbye(t *testing.T) {
	urls, a, alice, bob := clusterNodeA(t, nil)

	b, stopB := runRealm(t, realm.Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-b", Origins: realmtest.Probe(a).Origins(), DataDir: t.TempDir()})

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
			_ = realmtest.PublishSigned(a, nc, realmtest.Probe(a).Prefix+".presence.heartbeat", realmtest.EncodeJSON(map[string]any{"node": "realm-b", "scenes": map[string]int{"foundry": 1}}))
			select {
			case <-standIn:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	readUntil(t, wsA, "bob leaving as node b stops", isPresence(bob.ID, "leave"))
}
