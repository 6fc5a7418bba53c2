package biometrics_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
)

// clusterNode is one realm node's biometrics on a NATS cluster: its own
// engine and store, connected to its own server.
func clusterNode(t testing.TB, url, name string) (*biometrics.Engine, *biometrics.PathFeed, *store.Store) {
	t.Helper()
	return clusterNodeFlushing(t, url, name, 50*time.Millisecond)
}

// clusterNodeFlushing is clusterNode with its feed sending every flush.
func clusterNodeFlushing(t testing.TB, url, name string, flush time.Duration) (*biometrics.Engine, *biometrics.PathFeed, *store.Store) {
	t.Helper()
	return clusterNodeKeyed(t, url, name, flush, testKey(9))
}

// clusterNodeKeyed is clusterNodeFlushing under the template key key, with
// the keys a rotation retired.
func clusterNodeKeyed(t testing.TB, url, name string, flush time.Duration, key []byte, retired ...[]byte) (*biometrics.Engine, *biometrics.PathFeed, *store.Store) {
	t.Helper()
	st, err := store.New(context.Background(), natstest.Connect(t, url), store.Config{WaitForJetStream: true})
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t)
	// A start-up deadline that ends at once must not stop the feed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := biometrics.StartPathFeed(ctx, biometrics.PathFeedConfig{
		Store: st, Engine: e, Node: name, Key: key, RetiredKeys: retired, FlushEvery: flush,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return e, f, st
}

// waitFor polls cond until it holds, failing after a generous limit: the
// machine may be loaded, and nothing here measures time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func livenessReasons(evs []biometrics.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Kind == biometrics.EventLiveness {
			out = append(out, ev.Reason)
		}
	}
	return out
}

// streamVictim streams 20 s of a synthetic person's motion through node
// a, which must pass liveness, and waits until a's feed has sent all its
// cells; it returns the motion, for a replay.
func streamVictim(t *testing.T, a *biometrics.Engine, feedA *biometrics.PathFeed, clock *time.Time) []biometrics.Frame {
	t.Helper()
	frames := synth.NewPerson(3).Session(1).Frames(20*72, 72)
	victim := a.NewStream("victim", nil)
	if r := livenessReasons(push(victim, frames, clock)); len(r) != 0 {
		t.Fatalf("original motion through node A failed liveness: %v", r)
	}
	victim.Close()
	waitFor(t, "node A's cells to be sent", func() bool {
		return a.PathStats().Published > 0 && feedA.Stats().SentCells == a.PathStats().Published
	})
	return frames
}

// TestReplayThroughAnotherNode: on a 3-node NATS cluster, motion first
// streamed through node A is caught when it is replayed through node B,
// which never saw it but for the cells A shared; another person's motion
// through B is not taken for a replay.
func TestReplayThroughAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	servers := natstest.RunCluster(t, 3)
	a, feedA, _ := clusterNode(t, servers[0].ClientURL(), "node-a")
	b, feedB, _ := clusterNode(t, servers[1].ClientURL(), "node-b")

	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frames := streamVictim(t, a, feedA, &clock)
	waitFor(t, "node B to take node A's cells in", func() bool {
		return feedB.Stats().ReceivedCells >= feedA.Stats().SentCells
	})

	// Someone else streams through B first: not a replay.
	clock = clock.Add(time.Minute)
	other := b.NewStream("bystander", nil)
	if r := livenessReasons(push(other, synth.NewPerson(4).Session(1).Frames(20*72, 72), &clock)); len(r) != 0 {
		t.Errorf("another person's motion through node B failed liveness: %v", r)
	}
	other.Close()

	clock = clock.Add(time.Minute)
	copyFrames := append([]biometrics.Frame(nil), frames...)
	for i := range copyFrames {
		copyFrames[i].TimeUS += 3_600_000_000
	}
	// The control: a node that shares nothing does not catch it, so what
	// catches it on B is the cells A shared.
	lone := newEngine(t)
	if r := livenessReasons(push(lone.NewStream("mallory", nil), copyFrames, &clock)); len(r) != 0 {
		t.Fatalf("a node that shares nothing flagged the replay (%v): the test cannot tell sharing from the node's own checks", r)
	}
	clock = clock.Add(time.Minute)
	attacker := b.NewStream("mallory", nil)
	r := livenessReasons(push(attacker, copyFrames, &clock))
	if len(r) == 0 || r[0] != biometrics.LivenessReplay {
		t.Errorf("replay through node B of motion streamed through node A: liveness %v, want %q", r, biometrics.LivenessReplay)
	}
	if s := feedB.Stats(); s.Rejected != 0 || s.Dropped != 0 {
		t.Errorf("node B feed %+v: want nothing rejected or dropped", s)
	}
}

// TestReplayThroughARestartedNode: motion streamed through node A is
// caught when it is replayed through A after A restarted, with a new
// engine whose own registry never saw it: A takes in the cells its
// earlier run shared, as it does a peer's. What A shares after its
// restart stays its own: taken in too, a person's live motion would meet
// itself seconds later.
func TestReplayThroughARestartedNode(t *testing.T) {
	srv := natstest.RunServer(t)
	a, feedA, _ := clusterNode(t, srv.ClientURL(), "node-a")

	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frames := streamVictim(t, a, feedA, &clock)
	sentBefore := feedA.Stats().SentCells
	feedA.Close()

	// A restarts: a new engine, and its feed under the same name. Its
	// feed has read the store's history when it starts.
	restarted, feed, _ := clusterNode(t, srv.ClientURL(), "node-a")
	if got := feed.Stats().ReceivedCells; got != sentBefore {
		t.Fatalf("the restarted node took in %d cells of its earlier run, want the %d it sent", got, sentBefore)
	}

	clock = clock.Add(time.Minute)
	live := restarted.NewStream("bystander", nil)
	if r := livenessReasons(push(live, synth.NewPerson(4).Session(1).Frames(20*72, 72), &clock)); len(r) != 0 {
		t.Errorf("another person's motion through the restarted node failed liveness: %v", r)
	}
	live.Close()
	waitFor(t, "the restarted node's own cells to be sent", func() bool {
		return restarted.PathStats().Published > 0 && feed.Stats().SentCells == restarted.PathStats().Published
	})

	clock = clock.Add(time.Minute)
	copyFrames := append([]biometrics.Frame(nil), frames...)
	for i := range copyFrames {
		copyFrames[i].TimeUS += 3_600_000_000
	}
	r := livenessReasons(push(restarted.NewStream("mallory", nil), copyFrames, &clock))
	if len(r) == 0 || r[0] != biometrics.LivenessReplay {
		t.Errorf("replay through node A, restarted, of motion streamed through it before: liveness %v, want %q", r, biometrics.LivenessReplay)
	}
	if s := feed.Stats(); s.ReceivedCells != sentBefore || s.Rejected != 0 {
		t.Errorf("the restarted node took in %d cells (%d refused), want only its earlier run's %d", s.ReceivedCells, s.Rejected, sentBefore)
	}
}

// TestPathFeedRefusesForgedBatches: a message that does not open under the
// cluster's key (another key, another node's subject, garbage) is counted
// and changes nothing, and the feed goes on taking genuine batches in.
func TestPathFeedRefusesForgedBatches(t *testing.T) {
	srv := natstest.RunServer(t)
	a, feedA, st := clusterNode(t, srv.ClientURL(), "node-a")
	_, feedB, _ := clusterNode(t, srv.ClientURL(), "node-b")

	// A node with another key sends real cells: B cannot open them.
	stranger := newEngine(t)
	fs, err := biometrics.StartPathFeed(context.Background(), biometrics.PathFeedConfig{
		Store: st, Engine: stranger, Node: "stranger", Key: testKey(1), FlushEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fs.Close)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	push(stranger.NewStream("s", nil), synth.NewPerson(5).Session(1).Frames(10*72, 72), &clock)

	raw, err := st.Stream(context.Background(), store.StreamConfig{
		Name: biometrics.PathStream, Subjects: []string{"biopaths.>"}, MaxAge: biometrics.DefaultReplayHistory,
		MaxMsgsPerSubject: biometrics.DefaultPathMessages,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ subject, data string }{
		{"biopaths.forger", "not a batch"},
		{"biopaths.forger", "\x01"},
		{"biopaths.node-x", ""},
	} {
		if _, err := raw.Append(context.Background(), m.subject, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "node B to refuse the stranger's and the forged batches", func() bool {
		return fs.Stats().Sent > 0 && feedB.Stats().Rejected >= fs.Stats().Sent+3
	})
	if got := feedB.Stats().ReceivedCells; got != 0 {
		t.Fatalf("node B took in %d cells of forged or foreign batches", got)
	}

	// Genuine cells still arrive.
	push(a.NewStream("v", nil), synth.NewPerson(6).Session(1).Frames(10*72, 72), &clock)
	waitFor(t, "node B to take node A's cells in after the forgeries", func() bool {
		return feedA.Stats().SentCells > 0 && feedB.Stats().ReceivedCells >= feedA.Stats().SentCells
	})
}

func TestPathFeedConfig(t *testing.T) {
	st := storetest.New(t, store.Config{})
	e := newEngine(t)
	for _, c := range []struct {
		cfg  biometrics.PathFeedConfig
		want error
	}{
		{biometrics.PathFeedConfig{Engine: e, Node: "n", Key: testKey(1)}, biometrics.ErrPathFeed},
		{biometrics.PathFeedConfig{Store: st, Engine: e, Node: "a.b", Key: testKey(1)}, biometrics.ErrPathFeed},
		{biometrics.PathFeedConfig{Store: st, Engine: e, Node: "", Key: testKey(1)}, biometrics.ErrPathFeed},
		{biometrics.PathFeedConfig{Store: st, Engine: e, Node: "n", Key: []byte("short")}, biometrics.ErrPathKey},
	} {
		if f, err := biometrics.StartPathFeed(context.Background(), c.cfg); !errors.Is(err, c.want) {
			if f != nil {
				f.Close()
			}
			t.Errorf("StartPathFeed(node %q) error = %v, want %v", c.cfg.Node, err, c.want)
		}
	}
	if got := e.PathStats(); got != (biometrics.PathStats{}) {
		t.Errorf("a refused feed left the engine sharing: %+v", got)
	}
}
