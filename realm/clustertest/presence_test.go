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
	a, b := nodes.TwoOnCluster(t)
	alice := realmtest.NewOperator(t, a, "alice")
	bob := realmtest.NewOperator(t, a, "bob")
	wsA := dialLive(t, a, alice.Sess.Token)
	defer wsA.Close()
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()

	realmtest.JoinFoundry(t, wsA)
	realmtest.JoinFoundry(t, wsB)
	m, _ := realmtest.ReadUntil(t, wsA, "bob's presence join", func(m realmtest.LiveMsg) bool {
		return m.Str("type") == "presence" && m.Str("avatar") == bob.ID && m.Str("event") == "join"
	})
	if m.Str("scene") != "foundry" || m.Str("name") != "bob" {
		t.Fatalf("presence of bob on node a = %v, want scene foundry and name bob", m)
	}

	realmtest.Send(t, wsA, realmtest.PoseAt(1, 1.6, 2))
	realmtest.ReadUntil(t, wsB, "alice's pose on node b", realmtest.HasPoseOf(alice.ID))
	realmtest.Send(t, wsB, realmtest.PoseAt(2, 1.6, 3))
	realmtest.ReadUntil(t, wsA, "bob's pose on node a", realmtest.HasPoseOf(bob.ID))

	realmtest.Send(t, wsB, `{"type":"leave"}`)
	realmtest.ReadUntil(t, wsA, "bob's presence leave", func(m realmtest.LiveMsg) bool {
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
	a = nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: list, Node: "realm-a", Clock: clk})
	return urls, a, realmtest.NewOperator(t, a, "alice"), realmtest.NewOperator(t, a, "bob")
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
	realmtest.JoinFoundry(t, wsA)

	b := nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-b", Origins: realmtest.Probe(a).Origins(), Clock: clk})
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()
	if joined := realmtest.JoinFoundry(t, wsB); !realmtest.MemberOf(joined, alice.ID) {
		realmtest.ReadUntil(t, wsB, "alice's join, from node a's snapshot", realmtest.IsPresence(alice.ID, "join"))
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
			if wsA.WriteMessage(websocket.TextMessage, []byte(realmtest.PoseAt(1, 1.6, 2+float64(i)*0.01))) != nil {
				return
			}
		}
	}()
	realmtest.ReadUntil(t, wsB, "alice's pose on node b", realmtest.HasPoseOf(alice.ID))
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
	if _, before := realmtest.ReadUntil(t, wsB, "the ghost's join", realmtest.IsPresence(ghost["avatar"], "join")); slices.ContainsFunc(before, realmtest.IsPresence(forged["avatar"], "join")) {
		t.Fatal("an unsigned presence delta was applied")
	}
	pose := &nats.Msg{Subject: prefix + ".scene.foundry.poses", Header: nats.Header{clustermsg.NodeHeader: {"realm-ghost"}},
		Data: []byte(`{"type":"poses","scene":"foundry","poses":[{"avatar":"av_ghost","head":{"pos":[4,1.6,4],"rot":[0,0,0,1]}}]}`)}
	if err := nc.PublishMsg(realmtest.SignedBy(a, pose, pose.Subject)); err != nil {
		t.Fatal(err)
	}
	realmtest.ReadUntil(t, wsB, "the ghost's pose", realmtest.HasPoseOf(ghost["avatar"]))

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
	realmtest.Eventually(t, "nodes a and b hearing each other at the moved clock", func() bool {
		return heardSince(a, "realm-b") && heardSince(b, "realm-a")
	})
	clk.Advance(step)
	realmtest.ReadUntil(t, wsB, "the silent node's member leaving", realmtest.IsPresence(ghost["avatar"], "leave"))
	realmtest.ReadUntil(t, wsA, "the silent node's member leaving node a too", realmtest.IsPresence(ghost["avatar"], "leave"))
}

// TestPresenceNodeStopSaysGoodbye stops node b while bob is in the scene
// through it: alice, on node a, sees bob leave. A stand-in keeps announcing
// node b with its one member afterwards, so only b's own farewell, not the
// silence of its heartbeats, can tell node a that bob left.
func TestPresenceNodeStopSaysGoodbye(t *testing.T) {
	urls, a, alice, bob := clusterNodeA(t, nil)

	b, stopB := nodes.Run(t, realm.Config{Listen: "localhost:0", NATS: strings.Split(urls, ","), Node: "realm-b", Origins: realmtest.Probe(a).Origins(), DataDir: t.TempDir()})

	wsA := dialLive(t, a, alice.Sess.Token)
	defer wsA.Close()
	realmtest.JoinFoundry(t, wsA)
	wsB := dialLive(t, b, bob.Sess.Token)
	defer wsB.Close()
	realmtest.JoinFoundry(t, wsB)
	realmtest.ReadUntil(t, wsA, "bob's join through node b", realmtest.IsPresence(bob.ID, "join"))

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
	realmtest.ReadUntil(t, wsA, "bob leaving as node b stops", realmtest.IsPresence(bob.ID, "leave"))
}
