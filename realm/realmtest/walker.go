package realmtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
)

// Walker is an avatar present in the foundry through a clients/vr SDK
// connection, as a headset would be: it walks by sending head poses, and
// the realm decides each zone it steps into.
type Walker struct {
	tb       testing.TB
	node     Node // the node it is connected to
	cl       *vr.Client
	avatar   string
	session  string
	refusals chan *vr.RefusalError
}

// JoinFoundryAs opens an SDK connection of the session to node and joins
// the foundry, in no zone yet.
func JoinFoundryAs(tb testing.TB, node Node, token, avatarID, sessionID string) *Walker {
	tb.Helper()
	w := &Walker{tb: tb, node: node, avatar: avatarID, session: sessionID, refusals: make(chan *vr.RefusalError, 16)}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: node.URL(), Token: token, Transport: vr.WebSocket, Logger: Logger(tb),
		OnRefusal: func(e *vr.RefusalError) {
			select {
			case w.refusals <- e:
			default:
			}
		}})
	if err != nil {
		tb.Fatalf("vr.Dial = %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	w.cl = cl
	if _, err := cl.Join(ctx, "foundry"); err != nil {
		tb.Fatalf("join the foundry = %v", err)
	}
	return w
}

// StandIn is JoinFoundryAs for an operator, walked into zone.
func StandIn(tb testing.TB, node Node, o Operator, zone string) *Walker {
	tb.Helper()
	w := JoinFoundryAs(tb, node, o.Sess.Token, o.ID, o.Sess.Session.ID)
	w.Walk(zone)
	return w
}

// zoneCentre is a point well inside the foundry's zone, at head height.
func zoneCentre(tb testing.TB, n Node, zone string) [3]float32 {
	tb.Helper()
	sc, _ := Probe(n).Catalog.Scene("foundry")
	for _, z := range sc.Zones {
		if z.ID == zone {
			return [3]float32{float32(z.Min[0]+z.Max[0]) / 2, 1.6, float32(z.Min[2]+z.Max[2]) / 2}
		}
	}
	tb.Fatalf("the foundry has no zone %q", zone)
	return [3]float32{}
}

// Step sends one head pose in zone ("" for outside every zone).
func (w *Walker) Step(zone string) {
	w.tb.Helper()
	pos := [3]float32{-2, 1.6, -2} // outside every zone
	if zone != "" {
		pos = zoneCentre(w.tb, w.node, zone)
	}
	if err := w.cl.SendPose(vr.BodyPose{Head: vr.Pose{Pos: pos, Rot: [4]float32{0, 0, 0, 1}, Tracked: true}}); err != nil {
		w.tb.Fatalf("send pose = %v", err)
	}
}

// Walk steps into zone and waits until every one of nodes (by default the
// node it is connected to) sees the avatar there.
func (w *Walker) Walk(zone string, nodes ...Node) {
	w.tb.Helper()
	w.Step(zone)
	if len(nodes) == 0 {
		nodes = []Node{w.node}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for Probe(n).ZoneOf("foundry", w.avatar, w.session) != zone {
			select {
			case e := <-w.refusals:
				w.tb.Fatalf("walking into %q was refused: %v", zone, e)
			default:
			}
			if time.Now().After(deadline) {
				w.tb.Fatalf("node %s never saw the avatar in zone %q: it sees it in %q", n.Node(), zone, Probe(n).ZoneOf("foundry", w.avatar, w.session))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// WalkDenied steps into zone and waits for the realm's denial, which must
// name the zone; the avatar has left where it was and stands in no zone.
func (w *Walker) WalkDenied(zone string) *vr.RefusalError {
	w.tb.Helper()
	w.Step(zone)
	select {
	case e := <-w.refusals:
		if !errors.Is(e, vr.ErrDenied) || !strings.Contains(e.Reason, zone) {
			w.tb.Fatalf("walking into %q: refusal %v, want a denial naming the zone", zone, e)
		}
		if now := Probe(w.node).ZoneOf("foundry", w.avatar, w.session); now != "" {
			w.tb.Fatalf("after the denial the realm sees the avatar in %q, want no zone", now)
		}
		return e
	case <-time.After(10 * time.Second):
		w.tb.Fatalf("walking into %q: no denial", zone)
		return nil
	}
}

// Close ends the walker's SDK connection.
func (w *Walker) Close() { w.cl.Close() }
