package approval

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"go.uber.org/goleak"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var recordKey = []byte("zerorealm test record key 32 by!")

const owner = "av_0123456789abcdef0123456789abcdef"

// testAgent is an agent with a real chain: a root signed by a fresh
// secp256k1 realm key for a fresh Ed25519 agent key.
func testAgent(t *testing.T) *agents.Agent {
	t.Helper()
	rk, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	signer := agents.KeySigner{Key: rk}
	d, err := agents.PrepareRoot(agents.Grant{
		Owner: owner, Agent: agents.EncodeAgentKey(pub),
		Actions:   []string{agents.ActionTransferAsset},
		Resources: []agents.Resource{{Kind: agents.KindCollection, ID: "gold"}},
		Limits:    agents.Limits{TransferValue: 1000, DailyValue: 5000, AutoApproveValue: 100, MaxRisk: agents.RiskLow},
		IssuedAt:  now, ExpiresAt: now.Add(time.Hour),
	}, signer.Address())
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return &agents.Agent{ID: c.AgentID(), Chain: c}
}

// node opens a queue on its own connection to srvURL, as a realm node
// would.
func node(t *testing.T, url, name string, now func() time.Time, notify func(Pending)) *Queue {
	t.Helper()
	st, err := store.New(context.Background(), natstest.Connect(t, url), store.Config{RecordKey: recordKey, WaitForJetStream: true})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(context.Background(), Config{Store: st, Node: name, Now: now, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func transferRequest(a *agents.Agent, value uint64) Request {
	return Request{
		Kind: "transfer", Agent: a, Summary: "transfer gold",
		Action:  agents.Action{Name: agents.ActionTransferAsset, Resource: agents.Resource{Kind: agents.KindCollection, ID: "gold"}, Value: value},
		Payload: json.RawMessage(`{"intent":1}`),
	}
}

func confirmDigest(want *[]byte) func([]byte) error {
	return func(d []byte) error { *want = d; return nil }
}

// Enqueued on one node and approved on two at once: the action runs once,
// the record says done with its result on every node, and the step-up was
// bound to the action's digest.
func TestApprovedOnceAcrossNodes(t *testing.T) {
	srv := natstest.RunServer(t)
	// Each node notifies the changes it made: the enqueue, the approval
	// and the outcome, wherever they happened.
	var notices atomic.Int32
	notify := func(Pending) { notices.Add(1) }
	a := node(t, srv.ClientURL(), "a", nil, notify)
	b := node(t, srv.ClientURL(), "b", nil, notify)
	var runs atomic.Int32
	exec := func(_ context.Context, p Pending) (json.RawMessage, error) {
		runs.Add(1)
		if act := p.AgentAction(); !act.Approved || act.Value != 500 || string(p.Payload) != `{"intent":1}` {
			t.Errorf("executor got %+v, payload %s", act, p.Payload)
		}
		return json.RawMessage(`{"receipt":"r"}`), nil
	}
	a.Handle("transfer", exec)
	b.Handle("transfer", exec)
	ag := testAgent(t)
	ctx := context.Background()
	p, err := a.Enqueue(ctx, transferRequest(ag, 500))
	if err != nil {
		t.Fatal(err)
	}
	if p.State != StatePending || !ValidID(p.ID) || p.Agent != ag.ID || p.Chain != ag.Chain.Path() {
		t.Fatalf("enqueued %+v", p.View())
	}
	want := agents.ApprovalDigest(ag, transferRequest(ag, 500).Action, p.ID)
	if p.Digest != "0x"+hex.EncodeToString(want[:]) {
		t.Fatalf("digest %s, want agents.ApprovalDigest", p.Digest)
	}
	if got, err := b.Get(ctx, owner, p.ID); err != nil || got.State != StatePending {
		t.Fatalf("node b reads %+v, %v", got.State, err)
	}

	var wg sync.WaitGroup
	var won atomic.Int32
	for _, q := range []*Queue{a, b, a, b} {
		wg.Go(func() {
			var d []byte
			got, err := q.Approve(ctx, owner, p.ID, confirmDigest(&d))
			switch {
			case err == nil:
				won.Add(1)
				if got.State != StateDone || string(got.Result) != `{"receipt":"r"}` || hex.EncodeToString(d) != hex.EncodeToString(want[:]) {
					t.Errorf("approved: %+v, step-up digest %x", got.View(), d)
				}
			case !errors.Is(err, ErrNotPending):
				t.Errorf("a losing approval: %v, want ErrNotPending", err)
			}
		})
	}
	wg.Wait()
	if runs.Load() != 1 || won.Load() != 1 {
		t.Fatalf("runs %d, approvals won %d: want 1 and 1", runs.Load(), won.Load())
	}
	got, err := b.Get(ctx, owner, p.ID)
	if err != nil || got.State != StateDone || got.DecidedBy != owner {
		t.Fatalf("after: %+v, %v", got.View(), err)
	}
	if notices.Load() != 3 {
		t.Fatalf("%d notices, want 3: enqueued, approved, done", notices.Load())
	}
	if _, err := a.Reject(ctx, owner, p.ID); !errors.Is(err, ErrNotPending) {
		t.Fatalf("reject a done action: %v", err)
	}
}

// On a replicated bucket, what one node wrote last is what another reads
// at once, every time: after an approval ran on node a (done), node b
// reads done and refuses to decide it again; after it expired on node a,
// node b reads expired. A replica's direct get could answer the state
// before the acknowledged change ("approved" after "done").
func TestReadsAfterAnotherNodeDecided(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	servers := natstest.RunCluster(t, 3)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a := node(t, servers[0].ClientURL(), "a", clock, nil)
	b := node(t, servers[2].ClientURL(), "b", clock, nil)
	a.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
		return json.RawMessage(`{"receipt":"r"}`), nil
	})
	b.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) { return nil, nil })
	ag := testAgent(t)
	ctx := context.Background()
	for i := range 25 {
		p, err := a.Enqueue(ctx, transferRequest(ag, 500))
		if err != nil {
			t.Fatal(err)
		}
		var d []byte
		if got, err := a.Approve(ctx, owner, p.ID, confirmDigest(&d)); err != nil || got.State != StateDone {
			t.Fatalf("round %d: approve on a = %s, %v", i, got.State, err)
		}
		if got, err := b.Get(ctx, owner, p.ID); err != nil || got.State != StateDone || string(got.Result) != `{"receipt":"r"}` {
			t.Fatalf("round %d: node b reads %s %s, %v right after node a answered done", i, got.State, got.Result, err)
		}
		if _, err := b.Reject(ctx, owner, p.ID); !errors.Is(err, ErrNotPending) {
			t.Fatalf("round %d: node b rejects a done action: %v, want ErrNotPending", i, err)
		}
	}
	e, err := a.Enqueue(ctx, transferRequest(ag, 300))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(DefaultExpiry)
	mu.Unlock()
	if got, err := a.Get(ctx, owner, e.ID); err != nil || got.State != StateExpired {
		t.Fatalf("node a after its expiry: %s, %v", got.State, err)
	}
	if got, err := b.Get(ctx, owner, e.ID); err != nil || got.State != StateExpired {
		t.Fatalf("node b after node a expired it: %s, %v", got.State, err)
	}
}

// A refusal when the action runs leaves it failed with the problem; a
// refused step-up leaves it pending.
func TestApprovalOutcomes(t *testing.T) {
	srv := natstest.RunServer(t)
	now := time.Now()
	clock := func() time.Time { return now }
	q := node(t, srv.ClientURL(), "a", clock, nil)
	q.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) {
		return nil, &problem.Error{Status: http.StatusForbidden, Type: "agent-forbidden", Detail: "over-limit: spent"}
	})
	ctx := context.Background()
	ag, other := testAgent(t), testAgent(t)

	p, err := q.Enqueue(ctx, transferRequest(ag, 500))
	if err != nil {
		t.Fatal(err)
	}
	noStepUp := errors.New("no step-up")
	if _, err := q.Approve(ctx, owner, p.ID, func([]byte) error { return noStepUp }); !errors.Is(err, noStepUp) {
		t.Fatalf("approve without step-up: %v", err)
	}
	if got, _ := q.Get(ctx, owner, p.ID); got.State != StatePending {
		t.Fatalf("after a refused step-up: %s, want pending", got.State)
	}
	var d []byte
	got, err := q.Approve(ctx, owner, p.ID, confirmDigest(&d))
	if err != nil || got.State != StateFailed || got.Problem == nil || got.Problem.Type != problem.Base+"agent-forbidden" {
		t.Fatalf("approve, refused at execution: %+v, %v", got.View(), err)
	}

	r, _ := q.Enqueue(ctx, transferRequest(ag, 300))
	if got, err := q.Reject(ctx, owner, r.ID); err != nil || got.State != StateRejected {
		t.Fatalf("reject: %+v, %v", got.State, err)
	}

	c, _ := q.Enqueue(ctx, transferRequest(ag, 300))
	if _, err := q.Cancel(ctx, owner, c.ID, other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another agent cancels: %v, want ErrNotFound", err)
	}
	if got, err := q.Cancel(ctx, owner, c.ID, ag.ID); err != nil || got.State != StateCancelled || got.DecidedBy != ag.ID {
		t.Fatalf("cancel: %+v, %v", got.View(), err)
	}

	e, _ := q.Enqueue(ctx, transferRequest(ag, 300))
	now = now.Add(DefaultExpiry)
	if got, err := q.Get(ctx, owner, e.ID); err != nil || got.State != StateExpired {
		t.Fatalf("after its expiry: %s, %v", got.State, err)
	}
	if _, err := q.Approve(ctx, owner, e.ID, confirmDigest(&d)); !errors.Is(err, ErrExpired) {
		t.Fatalf("approve an expired action: %v", err)
	}

	if _, err := q.Get(ctx, "av_someoneelse", p.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another owner reads it: %v", err)
	}
	if _, err := q.Get(ctx, owner, "pa_../x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a malformed id: %v", err)
	}
	list, err := q.List(ctx, owner)
	if err != nil || len(list) != 4 {
		t.Fatalf("list: %d records, %v", len(list), err)
	}
	if _, err := q.Enqueue(ctx, Request{Kind: "unknown", Agent: ag}); !errors.Is(err, ErrNoExecutor) {
		t.Fatalf("enqueue without an executor: %v", err)
	}
}

func TestQueueBoundPerOwner(t *testing.T) {
	srv := natstest.RunServer(t)
	q := node(t, srv.ClientURL(), "a", nil, nil)
	q.Handle("transfer", func(context.Context, Pending) (json.RawMessage, error) { return nil, nil })
	ag := testAgent(t)
	for range MaxPendingPerOwner {
		if _, err := q.Enqueue(context.Background(), transferRequest(ag, 500)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := q.Enqueue(context.Background(), transferRequest(ag, 500))
	if p, ok := problem.As(err); !errors.Is(err, ErrQueueFull) || !ok || p.Status != http.StatusTooManyRequests {
		t.Fatalf("one more: %v", err)
	}
}

// FuzzDecode: a record read from the store (sealed, but a bug elsewhere
// or an old version could write anything) is accepted or refused, never
// a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"pa_0123456789abcdef0123456789abcdef","kind":"transfer","owner":"av_1","action_digest":"0x00","action":{"value":"5"}}`))
	f.Add([]byte(`{"id":"pa_","action":{"value":"-1"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !ValidID(p.ID) || p.Owner == "" {
			t.Fatalf("accepted %+v", p)
		}
	})
}
