package approval

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/problem"
)

// testClock is a clock the test moves, shared by the nodes of a test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// runningMarks is how many actions q's store still marks as running.
func runningMarks(t *testing.T, q *Queue) int {
	t.Helper()
	keys, err := q.running.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// A node approves two actions and stops, one before its run and one
// after it, before storing what it came to. Before the lease ends,
// nobody touches them; after it, two other nodes settle at once, and
// each action is settled exactly once: done with what the settler of its
// kind found, told to the owner, its mark gone, and the runner and the
// settling node named.
func TestStoppedRunIsSettledOnceByAnotherNode(t *testing.T) {
	srv := natstest.RunServer(t)
	clock := &testClock{now: time.Now()}
	var notices sync.Map // id -> last state told
	notify := func(p Pending) { notices.Store(p.ID, p.State) }
	runner := node(t, srv.ClientURL(), "runner", clock.Now, notify)
	b := node(t, srv.ClientURL(), "b", clock.Now, notify)
	c := node(t, srv.ClientURL(), "c", clock.Now, notify)
	var runs atomic.Int32
	runner.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
		runs.Add(1)
		return json.RawMessage(`{"receipt":"from the runner"}`), nil
	})
	settles := map[string]*atomic.Int32{}
	for _, q := range []*Queue{b, c} {
		q.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
			t.Error("a settling node ran the executor rather than the settler")
			return nil, nil
		})
		n := new(atomic.Int32)
		settles[q.node] = n
		q.HandleSettle("transfer", func(_ context.Context, p Pending) (json.RawMessage, error) {
			n.Add(1)
			if p.State != StateApproved || !p.AgentAction().Approved || string(p.Payload) != `{"intent":1}` {
				t.Errorf("settler got %+v", p.View())
			}
			return json.RawMessage(fmt.Sprintf(`{"receipt":"found by %s"}`, p.Node)), nil
		})
	}
	ag := testAgent(t)
	ctx := context.Background()
	stops := map[string]bool{} // id -> stops after its run
	runner.StopAt(func(p Pending, ran bool) bool { after, ok := stops[p.ID]; return ok && after == ran })
	var ids []string
	for _, after := range []bool{false, true} {
		p, err := runner.Enqueue(ctx, transferRequest(ag, 500))
		if err != nil {
			t.Fatal(err)
		}
		stops[p.ID] = after
		var d []byte
		got, err := runner.Approve(ctx, owner, p.ID, confirmDigest(&d))
		if err != nil || got.State != StateApproved || got.Node != "runner" || got.Lease.IsZero() {
			t.Fatalf("approve on a node that stops (after its run: %v): %+v, %v", after, got, err)
		}
		ids = append(ids, p.ID)
	}
	if runs.Load() != 1 {
		t.Fatalf("the runner ran %d actions, want 1 (it stopped before the other's run)", runs.Load())
	}
	if n := runningMarks(t, b); n != 2 {
		t.Fatalf("%d actions marked running, want 2", n)
	}

	// Its lease has not ended: the runner may still be at it.
	clock.Advance(leaseFor - time.Second)
	if s, err := b.SettleStale(ctx); err != nil || len(s) != 0 {
		t.Fatalf("settled within the runner's lease: %+v, %v", s, err)
	}
	clock.Advance(2 * time.Second)
	var wg sync.WaitGroup
	var settled sync.Map // id -> settling node
	var count atomic.Int32
	for _, q := range []*Queue{b, c, b, c} {
		wg.Go(func() {
			s, err := q.SettleStale(ctx)
			if err != nil {
				t.Errorf("settle on %s: %v", q.node, err)
			}
			for _, x := range s {
				count.Add(1)
				settled.Store(x.ID, q.node)
				if x.Runner != "runner" || x.Node != q.node || x.State != StateDone {
					t.Errorf("settled %+v by %s, runner %s", x.View(), x.Node, x.Runner)
				}
			}
		})
	}
	wg.Wait()
	if count.Load() != 2 || settles["b"].Load()+settles["c"].Load() != 2 {
		t.Fatalf("settled %d times, settlers ran %d and %d times: want each action settled once", count.Load(), settles["b"].Load(), settles["c"].Load())
	}
	for _, id := range ids {
		by, _ := settled.Load(id)
		got, err := runner.Get(ctx, owner, id)
		want := fmt.Sprintf(`{"receipt":"found by %s"}`, by)
		if err != nil || got.State != StateDone || string(got.Result) != want || got.Node != by {
			t.Fatalf("after settling: %+v (node %s), %v; want done with %s", got.View(), got.Node, err, want)
		}
		if told, _ := notices.Load(id); told != StateDone {
			t.Fatalf("the owner was last told %v of %s, want done", told, id)
		}
	}
	if n := runningMarks(t, b); n != 0 {
		t.Fatalf("%d marks left after settling", n)
	}
	// Nothing is settled twice.
	clock.Advance(2 * leaseFor)
	if s, err := c.SettleStale(ctx); err != nil || len(s) != 0 {
		t.Fatalf("settled again: %+v, %v", s, err)
	}
}

// An answer that does not tell what the action came to is not its
// outcome: the runner's record stays approved with a short lease; a
// settler that cannot tell either leaves it so, and the next pass that
// can stores it. A settler's refusal is stored as failed with its
// problem.
func TestOutcomeUnknownStaysApproved(t *testing.T) {
	srv := natstest.RunServer(t)
	clock := &testClock{now: time.Now()}
	q := node(t, srv.ClientURL(), "a", clock.Now, nil)
	q.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
		return nil, fmt.Errorf("%w: the gateway still carries it out", ErrOutcomeUnknown)
	})
	var answers []error
	q.HandleSettle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
		err := answers[0]
		answers = answers[1:]
		if err != nil {
			return nil, err
		}
		return json.RawMessage(`{"ack":"done"}`), nil
	})
	ag := testAgent(t)
	ctx := context.Background()
	approve := func() Pending {
		t.Helper()
		p, err := q.Enqueue(ctx, transferRequest(ag, 500))
		if err != nil {
			t.Fatal(err)
		}
		var d []byte
		got, err := q.Approve(ctx, owner, p.ID, confirmDigest(&d))
		if err != nil || got.State != StateApproved || got.Result != nil || got.Problem != nil {
			t.Fatalf("approve, outcome unknown: %+v, %v", got.View(), err)
		}
		if want := clock.Now().UTC().Add(retryUnknown); !got.Lease.Equal(want) {
			t.Fatalf("lease %s, want %s: asked again shortly", got.Lease, want)
		}
		return got
	}

	p := approve()
	answers = []error{ErrOutcomeUnknown, nil}
	clock.Advance(retryUnknown)
	if s, err := q.SettleStale(ctx); err != nil || len(s) != 0 {
		t.Fatalf("settled while the outcome is unknown: %+v, %v", s, err)
	}
	if got, _ := q.Get(ctx, owner, p.ID); got.State != StateApproved {
		t.Fatalf("after an unknown outcome: %s, want approved", got.State)
	}
	clock.Advance(retryUnknown)
	if s, err := q.SettleStale(ctx); err != nil || len(s) != 1 || s[0].State != StateDone || string(s[0].Result) != `{"ack":"done"}` {
		t.Fatalf("settled once known: %+v, %v", s, err)
	}

	f := approve()
	answers = []error{&problem.Error{Status: http.StatusForbidden, Type: "agent-forbidden", Detail: "revoked since"}}
	clock.Advance(retryUnknown)
	s, err := q.SettleStale(ctx)
	if err != nil || len(s) != 1 || s[0].ID != f.ID || s[0].State != StateFailed || s[0].Problem == nil || s[0].Problem.Detail != "revoked since" {
		t.Fatalf("settled with a refusal: %+v, %v", s, err)
	}
	if n := runningMarks(t, q); n != 0 {
		t.Fatalf("%d marks left", n)
	}
}

// A mark whose approval lost, or failed before its record said
// approved, goes once no approval can still be storing; one whose record
// is final goes at once. Neither is settled.
func TestStaleMarksAreCleared(t *testing.T) {
	srv := natstest.RunServer(t)
	clock := &testClock{now: time.Now()}
	q := node(t, srv.ClientURL(), "a", clock.Now, nil)
	q.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) { return json.RawMessage(`{}`), nil })
	q.HandleSettle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
		t.Error("a record not approved was settled")
		return nil, nil
	})
	ag := testAgent(t)
	ctx := context.Background()
	pending, err := q.Enqueue(ctx, transferRequest(ag, 500))
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := q.Enqueue(ctx, transferRequest(ag, 500))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Reject(ctx, owner, rejected.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Pending{pending, rejected} {
		if err := q.markRunning(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := q.SettleStale(ctx); err != nil || len(s) != 0 || runningMarks(t, q) != 1 {
		t.Fatalf("first pass: settled %+v, %v; %d marks, want the pending one's left", s, err, runningMarks(t, q))
	}
	clock.Advance(leaseFor + time.Second)
	if s, err := q.SettleStale(ctx); err != nil || len(s) != 0 || runningMarks(t, q) != 0 {
		t.Fatalf("after the lease: settled %+v, %v; %d marks, want none", s, err, runningMarks(t, q))
	}
	if got, _ := q.Get(ctx, owner, pending.ID); got.State != StatePending {
		t.Fatalf("the pending action is %s", got.State)
	}
}
