package live

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/scenes"
)

// TestAgentMarkCrossesNodesInSnapshots: a node that learns of another's
// members from its snapshot (it started late, or missed a message) shows
// an agent marked as its owner's, as the join message would have; a
// person stays a person. The snapshot is what the other node answers.
func TestAgentMarkCrossesNodesInSnapshots(t *testing.T) {
	catalog, err := scenes.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	// Node a holds an agent and a person in the foundry, and answers a
	// sync request with its snapshot.
	a := newFanoutHarness(t)
	a.h.svc = &Service{deps: Deps{Scenes: catalog}, now: time.Now}
	foundry, _ := catalog.Scene("foundry")
	a.scene = foundry
	agent := &socket{closing: make(chan closeFrame, 1), now: time.Now}
	mark := Mark{Kind: kindAgent, Agent: "ag_1", OnBehalfOf: &OnBehalfOf{Avatar: "av_owner", Handle: "oskar", Depth: 2, Via: "ag_0"}}
	a.h.enter(agent, foundry, "ag_1", "Guide", mark)
	a.join("av_grace")
	snap := presenceSnapshot{Node: "realm-a", Scenes: map[string][]Member{}}
	for id, room := range a.h.rooms {
		snap.Scenes[id] = room.views()
	}
	data, _ := json.Marshal(snap)

	// Node b applies it, as syncFrom does with the answer it read.
	b := &presenceHub{log: slog.New(slog.DiscardHandler), node: "realm-b", prefix: "zr",
		rooms: map[string]*sceneRoom{}, peers: map[string]*presencePeer{}, svc: &Service{deps: Deps{Scenes: catalog}, now: time.Now}}
	var got presenceSnapshot
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	presenceInbound{b}.applySnapshot(got)
	var agents, people int
	for _, m := range b.rooms["foundry"].views() {
		switch {
		case m.Avatar == "ag_1" && m.Name == "Guide" && m.Kind == kindAgent && m.Agent == "ag_1" && m.OnBehalfOf != nil && *m.OnBehalfOf == *mark.OnBehalfOf:
			agents++
		case m.Avatar == "av_grace" && m.Kind == kindPerson && m.OnBehalfOf == nil:
			people++
		}
	}
	if agents != 1 || people != 1 {
		t.Fatalf("node b sees %+v, want the agent marked as oskar's through ag_0 and grace as a person", b.rooms["foundry"].views())
	}
	// And tells its own members the same, on its next tick.
	var joined []presenceEventWire
	for _, ev := range b.rooms["foundry"].pending {
		if ev.wire.Event == presenceJoin {
			joined = append(joined, ev.wire)
		}
	}
	if len(joined) != 2 {
		t.Fatalf("node b queued joins %+v, want two", joined)
	}
	for _, ev := range joined {
		if ev.Avatar == "ag_1" && (ev.Kind != kindAgent || ev.OnBehalfOf == nil || ev.OnBehalfOf.Handle != "oskar") {
			t.Fatalf("node b tells its members of the agent as %+v, want it marked", ev)
		}
	}
}
