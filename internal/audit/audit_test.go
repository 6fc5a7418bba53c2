package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
)

func testStore(t *testing.T) *store.Store { return storetest.New(t, store.Config{}) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openLog opens a node's log on st, failing the test if it cannot.
func openLog(t testing.TB, st *store.Store, cfg Config) *Log {
	t.Helper()
	l, err := Open(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// openView opens a view of the store's audit chains keeping window events
// (0: the default), closed when the test ends.
func openView(t testing.TB, st *store.Store, window int) *View {
	t.Helper()
	v, err := NewView(context.Background(), st, window)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// recordDecisions records decisions 0..n-1 through l and closes it, so
// that every one is stored when it returns.
func recordDecisions(t testing.TB, l *Log, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if err := l.Record(ctx, decision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// impatientStore is a store on its own server that gives up on an
// operation after 200 ms, for tests that shut the server down.
func impatientStore(t testing.TB) (*server.Server, *store.Store) {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	st, err := store.New(context.Background(), nc, store.Config{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

func decision(i int) Event {
	ev := Event{Actor: fmt.Sprintf("avatar-%d", i), Action: "CommandActuator", Resource: `Actuator::"press-1/ram"`, Outcome: Allow, Policies: []string{"command-actuator"}, Signals: map[string]any{"trust": 0.93}}
	if i%3 == 0 {
		ev.Outcome, ev.Reasons, ev.Policies = Deny, []string{"no policy permits CommandActuator on Actuator"}, nil
	}
	return ev
}

// waitStored waits until the writer has stored n events in total.
func waitStored(t *testing.T, l *Log, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Stored < n {
		if time.Now().After(deadline) {
			t.Fatalf("stored %d events, want %d (stats %+v)", l.Stats().Stored, n, l.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChainVerifiesAndContinuesAcrossRestart(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	l := openLog(t, st, Config{Node: "n1", Logger: discard()})
	recordDecisions(t, l, 50)
	if got := l.Stats(); got.Stored != 50 || got.Failed != 0 {
		t.Fatalf("stats after close = %+v, want 50 stored, 0 failed", got)
	}

	// A new Log for the same node (a restart) continues the same chain.
	l2 := openLog(t, st, Config{Node: "n1", Logger: discard()})
	recordDecisions(t, l2, 10)
	rep, err := Verify(ctx, st, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != 60 {
		t.Fatalf("Verify = %+v, want 60 events and no break", rep)
	}
	if err := l2.Record(ctx, decision(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close = %v, want ErrClosed", err)
	}
}

func TestVerifyNamesFirstBrokenLink(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		tamper     func(t *testing.T, js jetstream.JetStream, stream jetstream.Stream, seqs []uint64)
		wantIndex  uint64
		wantReason string
	}{
		{
			name: "deleted event",
			tamper: func(t *testing.T, _ jetstream.JetStream, stream jetstream.Stream, seqs []uint64) {
				if err := stream.DeleteMsg(ctx, seqs[4]); err != nil {
					t.Fatal(err)
				}
			},
			wantIndex: 5, wantReason: "removed or inserted",
		},
		{
			name: "forged event appended",
			tamper: func(t *testing.T, js jetstream.JetStream, _ jetstream.Stream, _ []uint64) {
				forged, _ := json.Marshal(Event{Node: "n1", Index: 11, Prev: strings.Repeat("0", 64), Actor: "mallory", Action: "CommandActuator", Outcome: Allow})
				if _, err := js.Publish(ctx, "zr.audit.n1", forged); err != nil {
					t.Fatal(err)
				}
			},
			wantIndex: 11, wantReason: "edited or replaced",
		},
		{
			name: "garbage appended",
			tamper: func(t *testing.T, js jetstream.JetStream, _ jetstream.Stream, _ []uint64) {
				if _, err := js.Publish(ctx, "zr.audit.n1", []byte("{not json")); err != nil {
					t.Fatal(err)
				}
			},
			wantIndex: 11, wantReason: "not a valid event",
		},
		{
			name: "event of another node",
			tamper: func(t *testing.T, js jetstream.JetStream, _ jetstream.Stream, _ []uint64) {
				other, _ := json.Marshal(Event{Node: "n2", Index: 11, Actor: "x", Action: "y", Outcome: Allow})
				if _, err := js.Publish(ctx, "zr.audit.n1", other); err != nil {
					t.Fatal(err)
				}
			},
			wantIndex: 11, wantReason: `names node "n2"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := testStore(t)
			l := openLog(t, st, Config{Node: "n1", Logger: discard()})
			// Commit waits for each event's block, so each block holds
			// one event here; TestVerifyBlocks covers blocks of many.
			for i := range 10 {
				if err := l.Commit(ctx, decision(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			js := st.JetStream()
			stream, err := js.Stream(ctx, "ZR_AUDIT")
			if err != nil {
				t.Fatal(err)
			}
			// The chain is the only subject in the stream, so its
			// blocks are sequences 1..10.
			seqs := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
			if rep, err := Verify(ctx, st, "n1"); err != nil || !rep.OK() {
				t.Fatalf("Verify before tampering = %+v, %v; want ok", rep, err)
			}
			tc.tamper(t, js, stream, seqs)
			rep, err := Verify(ctx, st, "n1")
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("Verify after %s = ok, want a break", tc.name)
			}
			if rep.Break.Index != tc.wantIndex || !strings.Contains(rep.Break.Reason, tc.wantReason) {
				t.Fatalf("Verify break = %+v, want index %d and reason containing %q", rep.Break, tc.wantIndex, tc.wantReason)
			}
			if rep.Events != tc.wantIndex-1 {
				t.Fatalf("verified events before the break = %d, want %d", rep.Events, tc.wantIndex-1)
			}
		})
	}
}

func TestRecordRejectsUselessEvents(t *testing.T) {
	ctx := context.Background()
	l, err := Open(ctx, testStore(t), Config{Node: "n1", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	bad := map[string]Event{
		"no actor":         {Action: "A", Outcome: Allow},
		"no action":        {Actor: "a", Outcome: Allow},
		"no outcome":       {Actor: "a", Action: "A"},
		"unknown outcome":  {Actor: "a", Action: "A", Outcome: "maybe"},
		"deny without why": {Actor: "a", Action: "A", Outcome: Deny},
	}
	for name, ev := range bad {
		if err := l.Record(ctx, ev); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("Record(%s) = %v, want ErrInvalidEvent", name, err)
		}
	}
	if got := l.Stats().Recorded; got != 0 {
		t.Errorf("recorded %d invalid events, want 0", got)
	}
}

// TestBackPressure fills the queue while the store is unreachable and checks
// that Record blocks, then fails with the caller's context, and that the
// event is counted as failed rather than dropped silently.
func TestBackPressure(t *testing.T) {
	ctx := context.Background()
	srv, st := impatientStore(t)
	// Blocks of one event: the writer holds at most one taken event.
	l := openLog(t, st, Config{Node: "n1", QueueSize: 2, BlockEvents: 1, RetryFor: 300 * time.Millisecond, Logger: discard()})
	srv.Shutdown() // the writer now cannot store anything
	srv.WaitForShutdown()
	accepted := 0
	var lastErr error
	for i := range 10 {
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		lastErr = l.Record(rctx, decision(i))
		cancel()
		if lastErr != nil {
			break
		}
		accepted++
	}
	if lastErr == nil || !errors.Is(lastErr, context.DeadlineExceeded) {
		t.Fatalf("Record with a full queue = %v, want a deadline error", lastErr)
	}
	if accepted < 2 || accepted > 3 {
		t.Fatalf("accepted %d events before blocking, want the queue size (2) plus at most the one being written", accepted)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	got := l.Stats()
	if got.Stored != 0 || got.Failed != uint64(accepted)+1 {
		t.Fatalf("stats = %+v, want 0 stored and %d failed (every accepted event plus the refused one)", got, accepted+1)
	}
}

func TestViewShowsEveryNodeNewestFirst(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	view := openView(t, st, 5)
	for _, node := range []string{"n1", "n2"} {
		l := openLog(t, st, Config{Node: node, Logger: discard()})
		recordDecisions(t, l, 4)
	}
	// Stream sequences count blocks: wait for the last one, node n2's.
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLast(ctx, Subject("n2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := view.WaitApplied(ctx, last.Seq); err != nil {
		t.Fatal(err)
	}
	all := view.Events(Query{Limit: 100})
	if len(all) != 5 {
		t.Fatalf("view holds %d events, want its size 5", len(all))
	}
	if all[0].Node != "n2" || all[0].Index != 4 {
		t.Fatalf("newest event = %s#%d, want n2#4", all[0].Node, all[0].Index)
	}
	denies := view.Events(Query{Outcome: Deny})
	for _, ev := range denies {
		if ev.Outcome != Deny {
			t.Fatalf("Events(outcome=deny) returned %s", ev.Outcome)
		}
	}
	if len(denies) == 0 {
		t.Fatal("no denies in view, want some")
	}
	chains, err := Chains(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(chains, ",") != "n1,n2" {
		t.Fatalf("Chains = %v, want [n1 n2]", chains)
	}
}

// storedBlocks reads a node's chain as stored: each block's sequence and
// its event lines.
func storedBlocks(t *testing.T, st *store.Store, node string) (seqs []uint64, blocks [][][]byte) {
	t.Helper()
	ctx := context.Background()
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLast(ctx, Subject(node))
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= last.Seq; seq++ {
		m, err := stream.Get(ctx, seq)
		if err != nil || m.Subject != Subject(node) {
			continue
		}
		seqs = append(seqs, seq)
		blocks = append(blocks, bytes.Split(m.Data, []byte{'\n'}))
	}
	return seqs, blocks
}

// TestGroupCommit has many callers commit at once: every Commit returns
// only once its event is stored, events share blocks, and the chain of
// events runs through the blocks and verifies.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	st := testStore(t)
	l := openLog(t, st, Config{Node: "n1", Logger: discard()})
	const callers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := l.Commit(ctx, decision(c*each+i)); err != nil {
					errs <- err
					return
				}
				// Stored means counted as stored before Commit returns.
				if got := l.Stats().Stored; got < 1 {
					errs <- fmt.Errorf("commit returned with %d events stored", got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stats := l.Stats()
	if stats.Stored != callers*each || stats.Failed != 0 {
		t.Fatalf("stats = %+v, want %d stored and none failed", stats, callers*each)
	}
	if stats.Blocks >= callers*each {
		t.Fatalf("%d events took %d blocks: concurrent commits should share blocks", callers*each, stats.Blocks)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, st, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != callers*each || rep.Blocks != stats.Blocks {
		t.Fatalf("Verify = %+v, want %d events in %d blocks and no break", rep, callers*each, stats.Blocks)
	}
	// A restart continues after the last event of the last block.
	l2 := openLog(t, st, Config{Node: "n1", Logger: discard()})
	if err := l2.Commit(ctx, decision(1)); err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(ctx, st, "n1"); err != nil || !rep.OK() || rep.Events != callers*each+1 {
		t.Fatalf("Verify after restart = %+v, %v; want %d events and no break", rep, err, callers*each+1)
	}
}

// TestVerifyBlocks tampers with blocks of several events: a removed block
// breaks at its first event, an event edited inside a block breaks at the
// event after it.
func TestVerifyBlocks(t *testing.T) {
	ctx := context.Background()
	// record queues 300 events at once, so the writer takes them in
	// blocks of many (at most 64, so at least five blocks), and returns
	// the blocks as stored.
	record := func(t *testing.T) (*store.Store, []uint64, [][][]byte) {
		st := testStore(t)
		l := openLog(t, st, Config{Node: "n1", BlockEvents: 64, Logger: discard()})
		recordDecisions(t, l, 300)
		seqs, blocks := storedBlocks(t, st, "n1")
		if len(blocks) < 3 || len(blocks) >= 300 {
			t.Fatalf("300 queued events went into %d blocks, want several blocks of many", len(blocks))
		}
		return st, seqs, blocks
	}
	firstIndex := func(t *testing.T, line []byte) uint64 {
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Index
	}

	t.Run("removed block", func(t *testing.T) {
		st, seqs, blocks := record(t)
		stream, err := st.JetStream().Stream(ctx, "ZR_AUDIT")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.DeleteMsg(ctx, seqs[1]); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(ctx, st, "n1")
		if err != nil {
			t.Fatal(err)
		}
		want := firstIndex(t, blocks[1][0])
		if rep.OK() || rep.Break.Index != want || rep.Break.Seq != seqs[2] || !strings.Contains(rep.Break.Reason, "removed or inserted") || rep.Events != want-1 {
			t.Fatalf("Verify = %+v (break %+v), want a break at event %d in block seq %d", rep, rep.Break, want, seqs[2])
		}
	})

	t.Run("event edited inside a block", func(t *testing.T) {
		st, seqs, blocks := record(t)
		// Find a block of at least two events, and replace the chain's
		// tail from it with a copy whose first event says allow.
		k := -1
		for i, b := range blocks {
			if len(b) >= 2 {
				k = i
				break
			}
		}
		if k < 0 {
			t.Fatal("no block holds two events")
		}
		js := st.JetStream()
		stream, err := js.Stream(ctx, "ZR_AUDIT")
		if err != nil {
			t.Fatal(err)
		}
		for _, seq := range seqs[k:] {
			if err := stream.DeleteMsg(ctx, seq); err != nil {
				t.Fatal(err)
			}
		}
		var ev Event
		if err := json.Unmarshal(blocks[k][0], &ev); err != nil {
			t.Fatal(err)
		}
		ev.Outcome, ev.Reasons, ev.Actor = Allow, nil, "mallory"
		edited, _ := json.Marshal(ev)
		lines := append([][]byte{edited}, blocks[k][1:]...)
		if _, err := js.Publish(ctx, "zr.audit.n1", bytes.Join(lines, []byte{'\n'})); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(ctx, st, "n1")
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() || rep.Break.Index != ev.Index+1 || !strings.Contains(rep.Break.Reason, "edited or replaced") || rep.Events != ev.Index {
			t.Fatalf("Verify = %+v (break %+v), want a break at event %d, the one after the edit", rep, rep.Break, ev.Index+1)
		}
	})
}

// TestCommitFailsClosed: with the store gone, Commit reports that the
// event was not stored, so the caller does not act on the decision.
func TestCommitFailsClosed(t *testing.T) {
	ctx := context.Background()
	srv, st := impatientStore(t)
	l := openLog(t, st, Config{Node: "n1", RetryFor: 300 * time.Millisecond, Logger: discard()})
	if err := l.Commit(ctx, decision(1)); err != nil {
		t.Fatalf("Commit with the store up = %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	if err := l.Commit(ctx, decision(2)); !errors.Is(err, ErrNotStored) {
		t.Fatalf("Commit with the store down = %v, want ErrNotStored", err)
	}
	if got := l.Stats(); got.Stored != 1 || got.Failed != 1 {
		t.Fatalf("stats = %+v, want 1 stored and 1 failed", got)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := l.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
}

// TestCloseGivesUpWithItsContext: with the store down and the writer
// holding a block it would retry for an hour, Close returns once its
// context ends and the attempt in flight has its answer (within 5 s), with
// the error; the queued event is failed (its Commit caller told so, the
// counters say it), and neither the writer nor the checkpoint loop
// outlives Close (the package's goleak check).
func TestCloseGivesUpWithItsContext(t *testing.T) {
	ctx := context.Background()
	srv, st := impatientStore(t)
	l := openLog(t, st, Config{Node: "n1", RetryFor: time.Hour, Key: testKey(t, "n1"), Dir: t.TempDir(), Logger: discard()})
	if err := l.Commit(ctx, decision(1)); err != nil {
		t.Fatalf("Commit with the store up = %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	committed := make(chan error, 1)
	go func() { committed <- l.Commit(ctx, decision(2)) }()
	for l.Stats().Recorded < 2 {
		time.Sleep(10 * time.Millisecond) // until the second event is queued
	}
	closeCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := l.Close(closeCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with the store down = %v, want the context's deadline", err)
	}
	if err := <-committed; !errors.Is(err, ErrNotStored) {
		t.Fatalf("Commit of the event Close gave up on = %v, want ErrNotStored", err)
	}
	if got := l.Stats(); got.Stored != 1 || got.Failed != 1 {
		t.Fatalf("stats = %+v, want 1 stored and 1 failed", got)
	}
}
