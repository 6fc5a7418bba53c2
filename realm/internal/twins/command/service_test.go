package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
)

// The service stands alone: an in-process NATS server with JetStream, the
// store, the builtin foundry scene and its Cedar policies, real simulated
// gateways and a real trust engine. What the realm would pass in Deps is
// played here by small faithful implementations (a decision is the scene
// policies' answer; a step-up proof is spent once; presence is a table).

// world is what a test's service runs against.
type world struct {
	mu        sync.Mutex
	zones     map[string]string // avatar => zone presence admitted it into
	proofs    map[string]bool   // session + digest => unspent step-up proof
	sessions  map[string]session.Session
	avatars   map[string]*avatar.Avatar
	events    []audit.Event
	outcomes  []*Answer
	approvals []*Answer
}

func (w *world) Decide(ctx context.Context, sc *scenes.Scene, op Operator, as trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision {
	pctx, principal := subject(op, as)
	for k, v := range extra {
		pctx[k] = v
	}
	d, err := sc.Policies.Decide(ctx, policy.Request{
		Principal: principal.UID, Action: scenes.ActionUID(action), Resource: resource, Context: pctx,
		Entities: append(sc.Entities(), principal),
	})
	if err != nil {
		d = policy.Decision{Reason: err.Error()}
	}
	outcome := audit.Allow
	if !d.Allow {
		outcome = audit.Deny
	}
	w.RecordQueued(ctx, audit.Event{Actor: op.Avatar.ID, Action: action, Resource: resource.String(), Outcome: outcome})
	return d
}

func subject(op Operator, as trust.Assessment) (map[string]any, policy.Entity) {
	roles := make([]any, len(op.Avatar.Roles))
	for i, r := range op.Avatar.Roles {
		roles[i] = r
	}
	return map[string]any{scenes.ContextTrust: as.Context()},
		policy.Entity{UID: policy.UID{Type: scenes.TypeAvatar, ID: op.Avatar.ID}, Attrs: map[string]any{"roles": roles, "name": op.Avatar.Name}}
}

func (w *world) RecordQueued(_ context.Context, ev audit.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, ev)
}

func (w *world) Consume(_ context.Context, sessionID string, digest []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := sessionID + fmt.Sprintf("%x", digest)
	if !w.proofs[k] {
		return &Error{Kind: Forbidden, Detail: "step-up required"}
	}
	delete(w.proofs, k)
	return nil
}

func (w *world) stepUp(op Operator, c twin.Command) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := c.Hash()
	w.proofs[op.Session.ID+fmt.Sprintf("%x", h[:])] = true
}

type standingText string

func (s standingText) String() string { return string(s) }

func (w *world) WhereIs(_, avatarID, _ string) (string, fmt.Stringer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	z := w.zones[avatarID]
	return z, standingText("the realm sees you in zone " + z)
}

func (w *world) Get(_ context.Context, sessionID string) (session.Session, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.sessions[sessionID]
	if !ok {
		return session.Session{}, session.ErrInvalidSession
	}
	return s, nil
}

type avatarDirectory struct{ w *world }

func (d avatarDirectory) Get(_ context.Context, avatarID string) (*avatar.Avatar, error) {
	d.w.mu.Lock()
	defer d.w.mu.Unlock()
	if a, ok := d.w.avatars[avatarID]; ok {
		return a, nil
	}
	return nil, avatar.ErrNotFound
}

func (w *world) Outcome(a *Answer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outcomes = append(w.outcomes, a)
}

func (w *world) Approval(a *Answer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.approvals = append(w.approvals, a)
}

func (w *world) State(string, string, twin.State) {}

// trusted is a session's trust right after a user-verified passkey.
type trusted struct{ a trust.Assessment }

func (t trusted) Assess(context.Context, session.Session) trust.Assessment { return t.a }

func (w *world) signIn(id, zone string, roles ...string) Operator {
	w.mu.Lock()
	defer w.mu.Unlock()
	av := &avatar.Avatar{ID: id, Name: id, Roles: roles}
	s := session.Session{ID: "s-" + id, Avatar: id, Expires: time.Now().Add(time.Hour)}
	w.avatars[id], w.sessions[s.ID], w.zones[id] = av, s, zone
	return Operator{Session: s, Avatar: av}
}

func startService(t *testing.T) (*Service, *world) {
	t.Helper()
	ctx := context.Background()
	cat, err := scenes.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Prepare(Config{Catalog: cat, DataDir: t.TempDir(), Simulate: true})
	if err != nil {
		t.Fatal(err)
	}
	// The realm's own embedded server, which admits each simulated gateway
	// to its twin's subjects only.
	embedded, err := natsembed.Start(ctx, natsembed.Config{DataDir: t.TempDir(), Prefix: "zr", Gateways: svc.Gateways().NATSUsers(), ServerName: "twins-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { embedded.Shutdown(context.Background()) })
	t.Cleanup(svc.Close)
	nc := embedded.Conn()
	st, err := store.New(ctx, nc, store.Config{Prefix: "zr", RecordKey: bytes.Repeat([]byte{7}, store.RecordKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := trust.New(trust.Config{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := engine.NewTracker().Observe(trust.PasskeyAssertion{At: time.Now(), UserVerified: true, Attested: true})
	if err != nil || as.State != trust.Trusted {
		t.Fatalf("a fresh user-verified passkey gave %v, %v; want trusted", as.State, err)
	}
	w := &world{zones: map[string]string{}, proofs: map[string]bool{}, sessions: map[string]session.Session{}, avatars: map[string]*avatar.Avatar{}}
	err = svc.Start(ctx, Deps{
		Conn: nc, Prefix: "zr", Store: st, Key: key, Embedded: embedded,
		Decider: w, Subject: subject, Auditor: w, StepUps: w, Trust: trusted{as}, Locator: w,
		Sessions: w, Avatars: avatarDirectory{w}, Events: w,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The gateways refuse every grant until they have heard the
	// revocation feed.
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range svc.Gateways().Simulated() {
		for age := g.FeedAge(); age < 0 || age > time.Second; age = g.FeedAge() {
			if time.Now().After(deadline) {
				t.Fatal("the gateways never heard the revocation feed")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return svc, w
}

func newCommand(t *testing.T, twinID, actuator string, op Operator, key string, v float64) twin.Command {
	t.Helper()
	c, err := twin.NewCommand(twinID, actuator, op.Avatar.ID, key, twin.CommandRequest{Op: twin.OpSet, Value: &v})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServiceCarriesOutACommand(t *testing.T) {
	svc, w := startService(t)
	ctx := context.Background()
	ada := w.signIn("ada", "conveyor-line", "operator")
	c := newCommand(t, "conveyor-1", "belt-speed", ada, "belt-1", 1.5)
	ans, err := svc.Execute(ctx, ada, c, twin.CommandRequest{})
	if err != nil || ans.Status != StatusDone || ans.Ack == nil || ans.Ack.Target != 1.5 {
		t.Fatalf("command = %+v, %v; want done at 1.5", ans, err)
	}
	if ans.Grant.Signer != svc.GrantKey().Hex() {
		t.Fatalf("grant signed by %s, want the node key %s", ans.Grant.Signer, svc.GrantKey().Hex())
	}
	if gw, _ := svc.Gateways().Key("conveyor-1"); ans.Ack.Signer != gw.Hex() {
		t.Fatalf("acknowledgement signed by %s, want the gateway's %s", ans.Ack.Signer, gw.Hex())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.outcomes) != 1 {
		t.Fatalf("%d outcomes reported, want the one command carried out", len(w.outcomes))
	}
	last := w.events[len(w.events)-1]
	if last.Action != scenes.ActionCommandActuator || last.Outcome != audit.Allow || last.Signals[auditCommand] != c.Hash().Hex() || last.Signals[auditResult] != string(twin.ResultDone) {
		t.Fatalf("audit event %+v, want the allowed command with its hash and result", last)
	}
}

func TestServiceRefusesWhereThePolicyDoes(t *testing.T) {
	svc, w := startService(t)
	ctx := context.Background()
	ada := w.signIn("ada", "lobby", "operator")
	// Out of sight of the conveyor: the policy denies, and says where the
	// realm sees her.
	_, err := svc.Execute(ctx, ada, newCommand(t, "conveyor-1", "belt-speed", ada, "far", 1), twin.CommandRequest{})
	var ce *Error
	if !IsPolicyDeny(err) || !errors.As(err, &ce) || ce.Kind != Forbidden || !bytes.Contains([]byte(ce.Detail), []byte("zone lobby")) {
		t.Fatalf("command from the lobby = %v, want a policy refusal naming the zone", err)
	}
	// Naming another zone than the realm sees is refused before policy.
	_, err = svc.Execute(ctx, ada, newCommand(t, "conveyor-1", "belt-speed", ada, "claim", 1), twin.CommandRequest{Zone: "conveyor-line"})
	if err == nil || IsPolicyDeny(err) || !errors.As(err, &ce) || !bytes.Contains([]byte(ce.Detail), []byte("zone_mismatch")) {
		t.Fatalf("a claimed zone = %v, want zone_mismatch", err)
	}
	// Beside the conveyor, the same command goes through.
	w.mu.Lock()
	w.zones["ada"] = "conveyor-line"
	w.mu.Unlock()
	if ans, err := svc.Execute(ctx, ada, newCommand(t, "conveyor-1", "belt-speed", ada, "far", 1), twin.CommandRequest{}); err != nil || ans.Status != StatusDone {
		t.Fatalf("beside the conveyor = %+v, %v; want done", ans, err)
	}
}

func TestServiceWaitsForASecondOperator(t *testing.T) {
	svc, w := startService(t)
	ctx := context.Background()
	ada := w.signIn("ada", "press-bay", "operator")
	grace := w.signIn("grace", "control-room", "operator", "supervisor")
	c := newCommand(t, "press-1", "pressure", ada, "p-1", 5)
	if _, err := svc.Execute(ctx, ada, c, twin.CommandRequest{}); err == nil {
		t.Fatal("a critical command without a step-up went through")
	}
	w.stepUp(ada, c)
	res, err := svc.Execute(ctx, ada, c, twin.CommandRequest{})
	if err != nil || res.Status != StatusPendingApproval || res.Approval == nil || res.Approval.ID != c.Hash().Hex() {
		t.Fatalf("critical command = %+v, %v; want it waiting for approval under its hash", res, err)
	}
	pending, err := svc.PendingApprovals(ctx)
	if err != nil || len(pending) != 1 || pending[0].Requester != "ada" {
		t.Fatalf("pending = %+v, %v; want ada's command", pending, err)
	}
	rec, rev, err := svc.LoadApproval(ctx, res.Approval.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ce *Error
	if _, err := svc.DecideApproval(ctx, ada, rec, rev, true); !errors.As(err, &ce) || ce != errSelfApproval {
		t.Fatalf("self-approval = %v, want refused", err)
	}
	if _, err := svc.DecideApproval(ctx, grace, rec, rev, true); err == nil {
		t.Fatal("an approval without the approver's own step-up went through")
	}
	w.stepUp(grace, c)
	done, err := svc.DecideApproval(ctx, grace, rec, rev, true)
	if err != nil || done.Status != StatusDone || done.Approver != "grace" || done.Answer == nil || done.Answer.Ack.Target != 5 {
		t.Fatalf("approved = %+v, %v; want carried out at 5", done, err)
	}
	stored, rev, err := svc.LoadApproval(ctx, rec.Command.Hash().Hex())
	if err != nil || stored.Status != StatusDone {
		t.Fatalf("stored approval = %+v, %v; want done", stored, err)
	}
	if _, err := svc.DecideApproval(ctx, grace, stored, rev, true); !errors.As(err, &ce) || ce.Kind != Conflict {
		t.Fatalf("second approval = %v, want a Conflict", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.approvals) != 1 || len(w.outcomes) != 1 {
		t.Fatalf("%d approvals and %d outcomes reported, want one each", len(w.approvals), len(w.outcomes))
	}
	last := w.events[len(w.events)-1]
	if approvers, _ := last.Signals[auditApprovers].([]string); len(approvers) != 1 || approvers[0] != "grace" {
		t.Fatalf("audit event %+v, want grace as the approver", last)
	}
}
