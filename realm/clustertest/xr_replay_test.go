package clustertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// motionVerdicts is what a VR client is told of its stream: the trust
// pushed to it, the windows scored against its template and the realm's
// count of its frames (clients/PROTOCOL.md, "Trust" and "XR transports").
type motionVerdicts struct {
	mu         sync.Mutex
	states     []string // every trust state pushed, in order
	liveness   []string // the effects of failed liveness checks pushed
	scored     int
	accepted   uint64
	enrollment string
}

func (v *motionVerdicts) trust(tr vr.Trust) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.states = append(v.states, tr.State)
	for _, f := range tr.Factors {
		if f.Name == "liveness" {
			v.liveness = append(v.liveness, f.Effect)
		}
	}
}

func (v *motionVerdicts) score(s vr.Score) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.scored++
	v.states = append(v.states, s.State)
}

func (v *motionVerdicts) status(s vr.Status) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.accepted, v.enrollment = s.FramesAccepted, s.Enrollment
}

// caughtReplaying reports whether the session was suspended for replayed
// motion: a trust push in state suspended whose liveness factor names the
// replay rule.
func (v *motionVerdicts) caughtReplaying() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	replayed := false
	for _, e := range v.liveness {
		replayed = replayed || strings.Contains(e, biometrics.LivenessReplay)
	}
	return replayed && len(v.states) > 0 && v.states[len(v.states)-1] == "suspended"
}

// judged reports whether the realm has said it took in at least frames of
// the stream.
func (v *motionVerdicts) judged(frames uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.accepted >= frames
}

// scoredWindows is how many windows of the stream were scored against
// the avatar's template.
func (v *motionVerdicts) scoredWindows() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.scored
}

// enrolled reports whether the realm said the stream's avatar is enrolled.
func (v *motionVerdicts) enrolled() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.enrollment == realmtest.EnrollmentDone
}

func (v *motionVerdicts) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return fmt.Sprintf("states %v, failed liveness %q, %d windows scored, %d frames accepted, enrollment %q",
		v.states, v.liveness, v.scored, v.accepted, v.enrollment)
}

// streamVerdicts opens a VR client of node r for the session token over
// the WebSocket and collects what it is told of its motion.
func streamVerdicts(t *testing.T, r *realm.Realm, token string) (*vr.Client, *motionVerdicts) {
	t.Helper()
	v := &motionVerdicts{}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := vr.Dial(ctx, vr.Config{URL: r.URL(), Token: token, Transport: vr.WebSocket, Logger: realmtest.Logger(t),
		OnTrust: v.trust, OnScore: v.score, OnStatus: v.status})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, v
}

// recordVictim registers "victim" with key on node r and streams a
// synthetic wearer's motion (seed) until the avatar has enrolled with 8 s
// of it recorded, as by an attacker who captured the stream, which it
// returns. Eight seconds: a replay is caught within about four, and
// controls must be judged over as much motion, with room for a loaded
// machine.
func recordVictim(t *testing.T, r *realm.Realm, key *webauthntest.Authenticator, seed int64) *realmtest.Recorder {
	t.Helper()
	victim := nodes.Client(t, r).Register(key, "victim")
	cl, on := streamVerdicts(t, r, victim.Token)
	recording := realmtest.Record(cl)
	w := realmtest.Wear(recording, seed)
	const recorded = 8 * realmtest.WearerHz
	realmtest.EventuallyWithin(t, "the victim enrolled through "+r.Node()+", with 8 s of motion recorded", 60*time.Second, func() bool {
		return on.judged(recorded) && on.enrolled()
	})
	w.TakeOff()
	cl.Close()
	if on.caughtReplaying() {
		t.Fatalf("the victim's own motion through %s: %v", r.Node(), on)
	}
	return recording
}

// TestReplayThroughAnotherRealmNode: motion an avatar streamed through
// realm node A, replayed verbatim through node B by another person, gets
// that person's session suspended for replayed motion, though B never saw
// the motion: A shared its hashed path cells through the cluster's store.
// Each realm node is on its own server of the 3-node NATS cluster. In the
// same run, and so at the same pace, two controls show that the sharing is
// what catches it: the same replay through a node on a store of its own is
// not caught, and the first avatar's fresh motion through B, a genuine
// second session, is not taken for a replay of its first.
func TestReplayThroughAnotherRealmNode(t *testing.T) {
	// Most of its time is motion streamed in real time, on a cluster of
	// its own: it runs beside the other tests.
	t.Parallel()
	_, urls := nodes.Cluster(t)
	const enrollment = 4 * time.Second
	onCluster := func(name, url string, origins []string) *realm.Realm {
		return nodes.Start(t, realm.Config{Listen: "localhost:0", NATS: []string{url}, Node: name, Origins: origins, XREnrollment: enrollment})
	}
	a := onCluster("realm-a", urls[0], nil)
	b := onCluster("realm-b", urls[1], realmtest.Probe(a).Origins())
	lone := nodes.Start(t, realm.Config{Listen: "localhost:0", Node: "realm-lone", XREnrollment: enrollment})

	// The victim enrolls through A; whatever it sends is recorded, as by
	// an attacker who captured its stream.
	const victimSeed = 5
	victimKey := webauthntest.New()
	recording := recordVictim(t, a, victimKey, victimSeed)
	realmtest.EventuallyWithin(t, "node B takes in the path cells node A shared, as their metrics count them", 30*time.Second, func() bool {
		sent, _ := realmtest.Metric(t, a.URL(), `zerorealm_xr_path_cells_total{outcome="sent"}`)
		received, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_path_cells_total{outcome="received"}`)
		return sent > 0 && received >= sent
	})

	signInB := nodes.Client(t, b)
	signInB.Origin = a.URL() // node B serves node A's origin
	attacker := signInB.Register(webauthntest.New(), "attacker")
	clB, onB := streamVerdicts(t, b, attacker.Token)
	control := nodes.Client(t, lone).Register(webauthntest.New(), "control")
	clLone, onLone := streamVerdicts(t, lone, control.Token)
	again := signInB.Login(victimKey, "victim")
	clAgain, onAgain := streamVerdicts(t, b, again.Token)

	frames, shift := recording.Frames()
	replayB := realmtest.Replay(clB, frames, shift)
	defer replayB.TakeOff()
	replayLone := realmtest.Replay(clLone, frames, shift)
	defer replayLone.TakeOff()
	fresh := realmtest.WearSession(clAgain, victimSeed, 1)
	defer fresh.TakeOff()

	realmtest.EventuallyWithin(t, "the replay through node B is caught", 60*time.Second, onB.caughtReplaying)
	caughtAt := clB.Stats().Frames
	t.Logf("replay through node B caught after %d of %d frames: %v", caughtAt, len(frames), onB)
	// The realm reports the frames it took in once a second while they
	// flow: the controls' counts reach caughtAt only if their recording
	// goes on a while after it.
	if caughtAt+2*realmtest.WearerHz > uint64(len(frames)) {
		t.Fatalf("caught after %d of the recording's %d frames: too late to judge the controls over as much motion", caughtAt, len(frames))
	}

	for _, r := range []*realm.Realm{a, b} {
		if refused, ok := realmtest.Metric(t, r.URL(), "zerorealm_xr_path_batches_refused_total"); !ok || refused != 0 {
			t.Errorf("%s refused %v of its peers' batches of path cells (served: %v), sealed under the cluster's one key", r.Node(), refused, ok)
		}
	}

	// The controls, judged over at least as much motion as B needed.
	realmtest.EventuallyWithin(t, "the lone node takes in as much of the replay", 60*time.Second, func() bool { return onLone.judged(caughtAt) })
	realmtest.EventuallyWithin(t, "node B takes in as much of the victim's fresh motion, and scores it against the template", 60*time.Second, func() bool {
		return onAgain.judged(caughtAt) && onAgain.scoredWindows() > 0
	})
	for _, c := range []struct {
		what string
		v    *motionVerdicts
	}{
		{"the same replay through a node that shares nothing", onLone},
		{"the victim's fresh motion through node B", onAgain},
	} {
		c.v.mu.Lock()
		failed, states := c.v.liveness, c.v.states
		c.v.mu.Unlock()
		if len(failed) > 0 || strings.Contains(strings.Join(states, " "), "suspended") {
			t.Errorf("%s: %v, want no failed liveness check and no suspension", c.what, c.v)
		}
	}
	t.Logf("controls: lone node %v; victim again through node B %v", onLone, onAgain)
}

// TestReplayThroughALoneNodeAfterItRestarted: a realm alone on its
// embedded NATS server (the default) catches a replay of motion it saw
// before it restarted. Its registry starts empty; the path cells its
// earlier run stored, sealed, in its own store are what it compares the
// replay with. Before, a lone node stored none, and a restart forgot all
// it had seen.
func TestReplayThroughALoneNodeAfterItRestarted(t *testing.T) {
	t.Parallel()
	cfg := realm.Config{Listen: "localhost:0", Node: "realm-lone", DataDir: t.TempDir(), XREnrollment: 4 * time.Second}
	first, stop := nodes.Run(t, cfg)

	recording := recordVictim(t, first, webauthntest.New(), 6)
	realmtest.EventuallyWithin(t, "the node stores the path cells of the victim's motion", 30*time.Second, func() bool {
		sent, _ := realmtest.Metric(t, first.URL(), `zerorealm_xr_path_cells_total{outcome="sent"}`)
		return sent > 0
	})
	stop()

	again, _ := nodes.Run(t, cfg)
	if received, _ := realmtest.Metric(t, again.URL(), `zerorealm_xr_path_cells_total{outcome="received"}`); received == 0 {
		t.Fatal("the restarted node took in none of the path cells its earlier run stored")
	}
	attacker := nodes.Client(t, again).Register(webauthntest.New(), "attacker")
	clAttacker, onAttacker := streamVerdicts(t, again, attacker.Token)
	frames, shift := recording.Frames()
	replay := realmtest.Replay(clAttacker, frames, shift)
	defer replay.TakeOff()
	realmtest.EventuallyWithin(t, "the replay through the restarted node is caught", 60*time.Second, onAttacker.caughtReplaying)
	t.Logf("replay through the restarted node caught after %d of %d frames: %v", clAttacker.Stats().Frames, len(frames), onAttacker)
}
