package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// TestUnavailableWhenJetStreamStops checks that reads and writes against
// a server whose JetStream was switched off, and then against a server that
// is gone, fail with ErrUnavailable and never with ErrNotFound, which
// would make a caller believe the data is absent.
func TestUnavailableWhenJetStreamStops(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	s := newTestStore(t, natstest.Connect(t, srv.ClientURL()), Config{Timeout: time.Second})
	b, err := s.Bucket(ctx, BucketConfig{Name: "avail"})
	if err != nil {
		t.Fatal(err)
	}
	leader, err := s.Bucket(ctx, BucketConfig{Name: "availleader", LeaderReads: true})
	if err != nil {
		t.Fatal(err)
	}
	st := newTestStream(t, s, StreamConfig{Name: "AVAIL", Subjects: []string{"avail.>"}})
	if _, err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// A healthy store's answers are not unavailability.
	if _, err := b.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get of a missing key = %v, want ErrNotFound only", err)
	}
	if _, err := b.Create(ctx, "k", []byte("w")); !errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Create of an existing key = %v, want ErrConflict only", err)
	}

	checkAll := func(when string) {
		t.Helper()
		calls := map[string]func(context.Context) error{
			"Get":        func(ctx context.Context) error { _, err := b.Get(ctx, "k"); return err },
			"leader Get": func(ctx context.Context) error { _, err := leader.Get(ctx, "k"); return err },
			"Put":        func(ctx context.Context) error { _, err := b.Put(ctx, "k", []byte("x")); return err },
			"Append":     func(ctx context.Context) error { _, err := st.Append(ctx, "avail.a", []byte("x")); return err },
			"GetLast":    func(ctx context.Context) error { _, err := st.GetLast(ctx, "avail.a"); return err },
			"Keys":       func(ctx context.Context) error { _, err := b.Keys(ctx); return err },
		}
		for name, call := range calls {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := call(cctx)
			cancel()
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
				t.Errorf("%s %s = %v, want ErrUnavailable", name, when, err)
			}
		}
	}
	if h := s.Check(ctx); !h.OK() || !h.Connected || !h.JetStream || !h.Leaders {
		t.Fatalf("Check of a healthy store = %+v, want every check passed", h)
	}
	if err := srv.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	checkAll("with JetStream disabled")
	if h := s.Check(ctx); h.OK() || h.JetStream || !errors.Is(h.Err, ErrUnavailable) {
		t.Errorf("Check with JetStream disabled = %+v, want JetStream failing with ErrUnavailable", h)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	checkAll("with the server gone")
}

// TestUnavailableWhenQuorumLost checks a replicated bucket and stream after
// two of three servers died: the survivor cannot elect leaders, and what
// needs one (leader reads, appends) fails with ErrUnavailable.
func TestUnavailableWhenQuorumLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	ctx := context.Background()
	servers := natstest.RunCluster(t, 3)
	s := newTestStore(t, natstest.Connect(t, servers[0].ClientURL()), Config{Timeout: 2 * time.Second})
	b, err := s.Bucket(ctx, BucketConfig{Name: "quorum", LeaderReads: true})
	if err != nil {
		t.Fatal(err)
	}
	st := newTestStream(t, s, StreamConfig{Name: "QUORUM", Subjects: []string{"quorum.>"}})
	if _, err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if h := s.Check(ctx); !h.OK() {
		t.Fatalf("Check of a healthy cluster = %+v", h)
	}
	for _, srv := range servers[1:] {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	if err := firstFailure(t, func() error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		return s.Check(cctx).Err
	}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Check without quorum = %v, want ErrUnavailable", err)
	}
	// A leader that lost its followers keeps answering until its election
	// timeout tells it so: wait for the first failure, then judge it.
	if err := firstFailure(t, func() error { _, err := b.Get(ctx, "k"); return err }); !errors.Is(err, ErrUnavailable) {
		t.Errorf("leader Get without quorum = %v, want ErrUnavailable", err)
	}
	if err := firstFailure(t, func() error { _, err := b.Put(ctx, "k", []byte("w")); return err }); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put without quorum = %v, want ErrUnavailable", err)
	}
	if _, err := st.Append(ctx, "quorum.a", []byte("x"), WithMsgID("m1")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Append without quorum = %v, want ErrUnavailable", err)
	}
}

// firstFailure calls call until it fails, for at most 30 s, and returns
// the error.
func firstFailure(t *testing.T, call func() error) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := call(); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the call kept succeeding for 30s")
	return nil
}
