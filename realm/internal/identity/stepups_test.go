package identity

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

var testRecordKey = []byte("zerorealm test record key 32 by!")

// newTestStepUps opens the proofs on a fresh single-node JetStream, with a
// clock the test sets, and collects the keys reported as replayed.
func newTestStepUps(t *testing.T) (*StepUps, *time.Time, func() []string) {
	t.Helper()
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv.ClientURL())
	ctx := context.Background()
	st, err := store.New(ctx, nc, store.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RecordKey: testRecordKey})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	var mu sync.Mutex
	var replayed []string
	p, err := NewStepUps(ctx, st, nil, func(key string) {
		mu.Lock()
		defer mu.Unlock()
		replayed = append(replayed, key)
	})
	if err != nil {
		t.Fatalf("NewStepUps: %v", err)
	}
	now := time.Now()
	p.now = func() time.Time { return now }
	return p, &now, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), replayed...)
	}
}

// refusedFor checks that err refuses an action for want of a step-up (403,
// ErrStepUpRequired) and says why.
func refusedFor(t *testing.T, err error, why string) {
	t.Helper()
	var he *edge.Error
	if !errors.Is(err, ErrStepUpRequired) || !errors.As(err, &he) || he.Status != http.StatusForbidden || !strings.Contains(he.Detail, why) {
		t.Fatalf("refusal = %v, want a 403 ErrStepUpRequired saying %q", err, why)
	}
}

func TestStepUpProofFitsOneSessionAndActionOnce(t *testing.T) {
	p, _, replayed := newTestStepUps(t)
	ctx := context.Background()
	transfer, deletion := edge.ActionDigest("test/transfer/v1", []byte("1")), edge.ActionDigest("test/delete/v1", []byte("1"))

	refusedFor(t, p.Consume(ctx, "s1", transfer), "step-up first")
	if err := p.Record(ctx, "s1", transfer); err != nil {
		t.Fatalf("Record: %v", err)
	}
	refusedFor(t, p.Consume(ctx, "s2", transfer), "step-up first")
	refusedFor(t, p.Consume(ctx, "s1", deletion), "step-up first")
	if err := p.Consume(ctx, "s1", transfer); err != nil {
		t.Fatalf("the session's proof for its action was refused: %v", err)
	}
	refusedFor(t, p.Consume(ctx, "s1", transfer), "step-up first")
	if got := replayed(); len(got) != 0 {
		t.Fatalf("replays reported for honest use: %v", got)
	}
}

func TestStepUpProofExpires(t *testing.T) {
	p, now, _ := newTestStepUps(t)
	ctx := context.Background()
	digest := edge.ActionDigest("test/transfer/v1", []byte("2"))
	if err := p.Record(ctx, "s1", digest); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(StepUpValidity + time.Second)
	refusedFor(t, p.Consume(ctx, "s1", digest), "expired")
	// The expired proof is gone, not left for a later try.
	refusedFor(t, p.Consume(ctx, "s1", digest), "step-up first")
}

func TestStepUpProofPutBackIsRefusedAndReported(t *testing.T) {
	p, _, replayed := newTestStepUps(t)
	ctx := context.Background()
	digest := edge.ActionDigest("test/transfer/v1", []byte("3"))
	if err := p.Record(ctx, "s1", digest); err != nil {
		t.Fatal(err)
	}
	key := proofKey("s1", digest)
	saved, err := p.bucket.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Consume(ctx, "s1", digest); err != nil {
		t.Fatal(err)
	}
	// Whoever can write the store puts the used proof back, genuine seal
	// and all: the node that spent it still refuses it.
	if _, err := p.bucket.Put(ctx, key, saved.Value); err != nil {
		t.Fatal(err)
	}
	refusedFor(t, p.Consume(ctx, "s1", digest), "already used")
	if got := replayed(); len(got) != 1 || got[0] != key {
		t.Fatalf("replays reported = %v, want [%s]", got, key)
	}
}

func TestStepUpProofSpentConcurrentlyOnlyOnce(t *testing.T) {
	p, _, _ := newTestStepUps(t)
	ctx := context.Background()
	digest := edge.ActionDigest("test/transfer/v1", []byte("4"))
	if err := p.Record(ctx, "s1", digest); err != nil {
		t.Fatal(err)
	}
	const tries = 8
	errs := make(chan error, tries)
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() { errs <- p.Consume(ctx, "s1", digest) })
	}
	wg.Wait()
	close(errs)
	spent := 0
	for err := range errs {
		if err == nil {
			spent++
		} else if !errors.Is(err, ErrStepUpRequired) {
			t.Errorf("a concurrent use failed for another reason: %v", err)
		}
	}
	if spent != 1 {
		t.Fatalf("%d of %d concurrent uses spent the proof, want exactly 1", spent, tries)
	}
}
