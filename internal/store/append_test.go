package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

func TestAppendIfLastRaceSingleNode(t *testing.T) {
	srv := natstest.RunServer(t)
	stA := newTestStream(t, newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{}), raceStream)
	stB := newTestStream(t, newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{}), raceStream)
	races := 1000
	if testing.Short() {
		races = 100
	}
	runRaces(t, stA, stB, races)
}

func TestAppendIfLastRaceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := natstest.RunCluster(t, 3)
	// Two writers on different nodes, as two realm nodes would be.
	sA := newTestStore(t, natstest.Connect(t, servers[0].ClientURL()), Config{})
	sB := newTestStore(t, natstest.Connect(t, servers[1].ClientURL()), Config{})
	if got, want := sA.Replicas(), 3; got != want {
		t.Fatalf("Replicas() on a 3-node cluster = %d, want %d", got, want)
	}
	stA := newTestStream(t, sA, raceStream)
	stB := newTestStream(t, sB, raceStream)
	info, err := stA.js.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if got := info.Config.Replicas; got != 3 {
		t.Fatalf("stream replicas = %d, want 3", got)
	}
	runRaces(t, stA, stB, 1000)

	t.Run("idempotent retry", func(t *testing.T) { testIdempotent(t, stA, stB) })
}

var raceStream = StreamConfig{Name: "RACE", Subjects: []string{"race.>"}}

// runRaces makes two writers append to one subject with the same expected
// sequence, n times, and checks exactly one wins each time.
func runRaces(t *testing.T, stA, stB *Stream, n int) {
	t.Helper()
	ctx := context.Background()
	const subject = "race.asset"
	type result struct {
		seq uint64
		err error
	}
	var last uint64
	winners := make(map[uint64]string, n)
	for i := range n {
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]result, 2)
		for w, st := range []*Stream{stA, stB} {
			wg.Go(func() {
				<-start
				seq, err := st.AppendIfLast(ctx, subject, fmt.Appendf(nil, "race %d writer %d", i, w), last)
				results[w] = result{seq, err}
			})
		}
		close(start)
		wg.Wait()

		won := -1
		for w, r := range results {
			switch {
			case r.err == nil && won == -1:
				won = w
			case r.err == nil:
				t.Fatalf("race %d: both writers won (seqs %d and %d) expecting %d", i, results[0].seq, results[1].seq, last)
			case !errors.Is(r.err, ErrConflict):
				t.Fatalf("race %d: writer %d: AppendIfLast error = %v, want ErrConflict or success", i, w, r.err)
			case i == 0:
				t.Logf("conflict as reported: %v", r.err)
			}
		}
		if won == -1 {
			t.Fatalf("race %d: no writer won expecting %d: %v / %v", i, last, results[0].err, results[1].err)
		}
		last = results[won].seq
		winners[last] = fmt.Sprintf("race %d writer %d", i, won)
	}

	if got := subjectCount(t, stA, subject); got != uint64(n) {
		t.Errorf("messages on %s = %d, want %d (one per race)", subject, got, n)
	}
	// From the leader: a replica may not have applied the last race yet.
	m, err := stB.GetLast(ctx, subject, FromLeader())
	if err != nil {
		t.Fatalf("GetLast: %v", err)
	}
	if m.Seq != last || string(m.Data) != winners[last] {
		t.Errorf("GetLast(%q) = %d %q, want %d %q", subject, m.Seq, m.Data, last, winners[last])
	}
	for seq, want := range winners {
		m, err := stA.Get(ctx, seq, FromLeader())
		if err != nil {
			t.Fatalf("Get(%d): %v", seq, err)
		}
		if string(m.Data) != want || m.Subject != subject {
			t.Errorf("Get(%d) = %s %q, want %s %q", seq, m.Subject, m.Data, subject, want)
		}
	}
}

func TestIdempotentAppend(t *testing.T) {
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, raceStream)
	testIdempotent(t, st, st)
}

func testIdempotent(t *testing.T, stA, stB *Stream) {
	ctx := context.Background()
	const subject = "race.idem"

	first, err := stA.AppendIfLast(ctx, subject, []byte("transfer 1"), 0, WithMsgID("transfer-1"), WithHeader("Zr-Kind", "transfer"))
	if err != nil {
		t.Fatalf("first AppendIfLast: %v", err)
	}
	// The same append again, as after a lost ack: the expectation is now
	// stale, but the message is ours.
	again, err := stB.AppendIfLast(ctx, subject, []byte("transfer 1"), 0, WithMsgID("transfer-1"), WithHeader("Zr-Kind", "transfer"))
	if err != nil {
		t.Fatalf("repeated AppendIfLast with the same id: %v", err)
	}
	if again != first {
		t.Errorf("repeated AppendIfLast = %d, want %d", again, first)
	}
	if got := subjectCount(t, stA, subject); got != 1 {
		t.Errorf("messages on %s after a repeated append = %d, want 1", subject, got)
	}
	// From the leader: a direct get may be answered by a replica that has
	// not applied the write yet.
	m, err := stA.GetLast(ctx, subject, FromLeader())
	if err != nil {
		t.Fatalf("GetLast: %v", err)
	}
	if got := m.Header.Get("Zr-Kind"); got != "transfer" {
		t.Errorf("header Zr-Kind = %q, want %q", got, "transfer")
	}

	// Someone else's message with the same stale expectation is a conflict.
	if _, err := stB.AppendIfLast(ctx, subject, []byte("transfer 2"), 0, WithMsgID("transfer-2")); !errors.Is(err, ErrConflict) {
		t.Errorf("AppendIfLast with another id and a stale expectation: error = %v, want ErrConflict", err)
	}
	// Without an expectation the server's deduplication answers.
	dup, err := stB.Append(ctx, subject, []byte("transfer 1"), WithMsgID("transfer-1"))
	if err != nil || dup != first {
		t.Errorf("Append with a seen id = %d, %v; want %d, nil", dup, err, first)
	}
	if got := subjectCount(t, stA, subject); got != 1 {
		t.Errorf("messages on %s = %d, want 1", subject, got)
	}
	// Once another write has overtaken ours, a single replica checks the
	// expectation first (conflict), a replicated stream deduplicates first
	// (our original sequence). Either way nothing new is stored.
	next, err := stA.AppendIfLast(ctx, subject, []byte("transfer 3"), first, WithMsgID("transfer-3"))
	if err != nil {
		t.Fatalf("AppendIfLast(transfer 3): %v", err)
	}
	seq, err := stB.AppendIfLast(ctx, subject, []byte("transfer 1"), 0, WithMsgID("transfer-1"))
	if !errors.Is(err, ErrConflict) && (err != nil || seq != first) {
		t.Errorf("repeating an overtaken append = %d, %v; want ErrConflict or %d, nil", seq, err, first)
	}
	if got := subjectCount(t, stA, subject); got != 2 {
		t.Errorf("messages on %s = %d, want 2", subject, got)
	}
	if _, err := stB.GetLast(ctx, "race.none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetLast(race.none) error = %v, want ErrNotFound", err)
	}
	if _, err := stB.Get(ctx, next+1000); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(%d) error = %v, want ErrNotFound", next+1000, err)
	}
}

func TestAppendAtomic(t *testing.T) {
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{})
	st := newTestStream(t, s, StreamConfig{Name: "ATOMIC", Subjects: []string{"asset.>"}, AllowAtomic: true})
	ctx := context.Background()

	seqA, err := st.AppendIfLast(ctx, "asset.a", []byte("a0"), 0)
	if err != nil {
		t.Fatalf("AppendIfLast(asset.a): %v", err)
	}
	seqB, err := st.AppendIfLast(ctx, "asset.b", []byte("b0"), 0)
	if err != nil {
		t.Fatalf("AppendIfLast(asset.b): %v", err)
	}

	stale := []struct {
		name string
		msgs []AtomicMsg
	}{
		{"stale second", []AtomicMsg{{Subject: "asset.a", Data: []byte("a1"), LastSeq: seqA}, {Subject: "asset.b", Data: []byte("b1"), LastSeq: seqA}}},
		{"stale first", []AtomicMsg{{Subject: "asset.a", Data: []byte("a1"), LastSeq: seqB}, {Subject: "asset.b", Data: []byte("b1"), LastSeq: seqB}}},
		{"must not exist", []AtomicMsg{{Subject: "asset.a", Data: []byte("a1"), LastSeq: seqA}, {Subject: "asset.b", Data: []byte("b1"), LastSeq: 0}}},
	}
	for _, tc := range stale {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := st.AppendAtomic(ctx, tc.msgs); !errors.Is(err, ErrConflict) {
				t.Fatalf("AppendAtomic error = %v, want ErrConflict", err)
			}
			for subj, want := range map[string]uint64{"asset.a": seqA, "asset.b": seqB} {
				m, err := st.GetLast(ctx, subj)
				if err != nil {
					t.Fatalf("GetLast(%q): %v", subj, err)
				}
				if m.Seq != want {
					t.Errorf("GetLast(%q).Seq = %d after a refused batch, want %d", subj, m.Seq, want)
				}
			}
		})
	}

	seqs, err := st.AppendAtomic(ctx, []AtomicMsg{
		{Subject: "asset.a", Data: []byte("a1"), LastSeq: seqA},
		{Subject: "asset.b", Data: []byte("b1"), LastSeq: seqB, Header: map[string][]string{"Zr-Transfer": {"t1"}}},
		{Subject: "asset.c", Data: []byte("c0"), LastSeq: 0},
	})
	if err != nil {
		t.Fatalf("AppendAtomic with current expectations: %v", err)
	}
	for i, subj := range []string{"asset.a", "asset.b", "asset.c"} {
		m, err := st.GetLast(ctx, subj)
		if err != nil {
			t.Fatalf("GetLast(%q): %v", subj, err)
		}
		if m.Seq != seqs[i] {
			t.Errorf("GetLast(%q).Seq = %d, want %d (returned by AppendAtomic)", subj, m.Seq, seqs[i])
		}
	}
	if m, _ := st.Get(ctx, seqs[1]); m.Header.Get("Zr-Transfer") != "t1" || string(m.Data) != "b1" {
		t.Errorf("Get(%d) = %q header %v, want \"b1\" with Zr-Transfer t1", seqs[1], m.Data, m.Header)
	}

	plain := newTestStream(t, s, StreamConfig{Name: "PLAIN", Subjects: []string{"plain.>"}})
	if _, err := plain.AppendAtomic(ctx, []AtomicMsg{{Subject: "plain.a"}, {Subject: "plain.b"}}); err == nil || errors.Is(err, ErrConflict) {
		t.Errorf("AppendAtomic on a stream without AllowAtomic: error = %v, want a non-conflict error", err)
	}
}
