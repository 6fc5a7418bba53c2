package realm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/audit"
)

// storedAudit reports whether the audit chain as stored (not the queue)
// holds an event that matches.
func storedAudit(t *testing.T, r *Realm, matches func(audit.Event) bool) bool {
	t.Helper()
	ctx := context.Background()
	stream, err := r.store.Stream(ctx, audit.StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLast(ctx, audit.Subject(r.cfg.Node))
	if err != nil {
		return false
	}
	for seq := uint64(1); seq <= last.Seq; seq++ {
		m, err := stream.Get(ctx, seq)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(m.Data), "\n") {
			var ev audit.Event
			if json.Unmarshal([]byte(line), &ev) == nil && matches(ev) {
				return true
			}
		}
	}
	return false
}

func withAction(action string) func(audit.Event) bool {
	return func(ev audit.Event) bool { return ev.Action == action }
}

func testEvent(action string) audit.Event {
	return audit.Event{Actor: "realm:test", Action: action, Resource: "test", Outcome: audit.Allow, Reasons: []string{"test"}}
}

// TestAuditAndWaitIsStoredOnReturn: a waited-for record is in the stored
// chain as soon as the call returns, even when the caller's context was
// already cancelled (the client hung up), and a record that cannot be
// stored is an error the caller sees.
func TestAuditAndWaitIsStoredOnReturn(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0"})
	if err := r.auditAndWait(context.Background(), testEvent("TestWaited")); err != nil {
		t.Fatalf("auditAndWait = %v, want nil", err)
	}
	if !storedAudit(t, r, withAction("TestWaited")) {
		t.Fatal("auditAndWait returned before its event was stored")
	}
	hungUp, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.auditAndWait(hungUp, testEvent("TestWaitedHungUp")); err != nil {
		t.Fatalf("auditAndWait with a cancelled request context = %v, want nil", err)
	}
	if !storedAudit(t, r, withAction("TestWaitedHungUp")) {
		t.Fatal("auditAndWait with a cancelled request context returned before its event was stored")
	}

	if err := r.audit.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.auditAndWait(context.Background(), testEvent("TestWaitedClosed")); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("auditAndWait with the audit log closed = %v, want %v", err, audit.ErrClosed)
	}
}

// TestAuditAsyncQueues: a queued record reaches the stored chain without
// the caller waiting, also after the caller's context ends; with the audit
// log closed the caller goes on (the failure is logged, not returned).
func TestAuditAsyncQueues(t *testing.T) {
	r := startRealm(t, Config{Listen: "localhost:0"})
	hungUp, cancel := context.WithCancel(context.Background())
	cancel()
	before := r.audit.Stats().Recorded
	r.auditAsync(hungUp, testEvent("TestQueued"))
	if got := r.audit.Stats().Recorded; got <= before {
		t.Fatalf("audit records accepted after auditAsync = %d, want more than %d", got, before)
	}
	eventually(t, "the queued event is stored", func() bool { return storedAudit(t, r, withAction("TestQueued")) })

	if err := r.audit.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	failedBefore := r.audit.Stats()
	r.auditAsync(context.Background(), testEvent("TestQueuedClosed"))
	if after := r.audit.Stats(); after.Recorded != failedBefore.Recorded {
		t.Fatalf("audit records accepted after auditAsync on a closed log = %d, want %d", after.Recorded, failedBefore.Recorded)
	}
}
