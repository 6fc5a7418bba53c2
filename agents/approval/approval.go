package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/problem"
	"github.com/zerorealm/zerorealm/internal/store"
)

// The states of a waiting action. pending is the only state an action
// leaves by a decision; done, failed, rejected, expired and cancelled are
// final.
const (
	// StatePending: waiting for the owner.
	StatePending = "pending"
	// StateApproved: the owner approved it and a node is running it.
	StateApproved = "approved"
	// StateDone: it ran; Result is its answer.
	StateDone = "done"
	// StateFailed: it was approved, and deciding it again at execution
	// refused it (or it could not run); Problem says why.
	StateFailed = "failed"
	// StateRejected: the owner refused it.
	StateRejected = "rejected"
	// StateExpired: nobody decided before Expires.
	StateExpired = "expired"
	// StateCancelled: the agent withdrew it.
	StateCancelled = "cancelled"
)

// Bucket holds the queue's records, keyed <owner>.<id>.
const Bucket = "agent-approvals"

// DefaultExpiry is how long an action waits for its owner by default.
const DefaultExpiry = 15 * time.Minute

// MaxExpiry bounds Config.Expiry: no delegation lives longer than a day,
// so nothing it asked should wait longer.
const MaxExpiry = 24 * time.Hour

// recordTTL keeps a record after it can no longer be decided, so that the
// agent can still read what came of it.
const recordTTL = MaxExpiry + 24*time.Hour

// MaxPendingPerOwner bounds the actions waiting for one owner, so that a
// runaway agent cannot fill the bucket or the owner's screen.
const MaxPendingPerOwner = 64

// MaxPayload bounds a request's payload.
const MaxPayload = 16 << 10

// executionTimeout bounds an approved action's run, which outlives the
// owner's request: once it is approved it must finish or fail on record.
// A transfer or a twin command takes a few seconds at most (their own
// deadlines are 3 s); past this, and the lease's grace, another node
// settles it (settle.go).
const executionTimeout = 15 * time.Second

// Problem types of the queue (docs/errors.md).
const (
	TypeNotPending problem.Type = "approval-not-pending"
	TypeExpired    problem.Type = "approval-expired"
	TypeQueueFull  problem.Type = "approval-queue-full"
)

// Sentinel errors, each carried by a problem with its status.
var (
	ErrNotFound   = errors.New("approval: no such pending action")
	ErrNotPending = errors.New("approval: the action is no longer pending")
	ErrExpired    = errors.New("approval: the action expired")
	ErrQueueFull  = errors.New("approval: too many actions wait for this owner")
	ErrNoExecutor = errors.New("approval: no executor for this kind of action")
	ErrMalformed  = errors.New("approval: malformed record")
)

// Request is an action to wait for its owner's approval.
type Request struct {
	// Kind names the Executor that runs it once approved ("transfer",
	// "command", ...).
	Kind string
	// Agent asked for it; its token is kept (sealed) so that the action
	// can be decided again as the agent's when it runs.
	Agent *agents.Agent
	// Action is the action as the agents domain sees it; the approval's
	// digest binds it (agents.ApprovalDigest).
	Action agents.Action
	// Summary is one line for the owner ("transfer 500 gold to 0x...").
	Summary string
	// Payload is what the executor needs to run the action again (at
	// most MaxPayload bytes of JSON).
	Payload json.RawMessage
}

// ActionView is the action a record names.
type ActionView struct {
	Name     string          `json:"name"`
	Resource agents.Resource `json:"resource"`
	Value    string          `json:"value"`
	Risk     agents.Risk     `json:"risk,omitempty"`
}

// Problem is why an approved action failed, as the client would have been
// told had it asked without waiting.
type Problem struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// Pending is one record of the queue: the action, who asked, and what
// became of it.
type Pending struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Owner      string     `json:"owner"`
	Agent      string     `json:"agent"`
	Delegation string     `json:"delegation"`
	Chain      string     `json:"chain"`
	Action     ActionView `json:"action"`
	Summary    string     `json:"summary"`
	// Digest is what the owner's step-up must be bound to, 0x hex.
	Digest  string     `json:"action_digest"`
	State   string     `json:"state"`
	Created time.Time  `json:"created"`
	Expires time.Time  `json:"expires"`
	Decided *time.Time `json:"decided,omitempty"`
	// DecidedBy is the owner (approved, rejected) or the agent
	// (cancelled).
	DecidedBy string `json:"decided_by,omitempty"`
	// Node ran the approved action (or settles it, settle.go).
	Node string `json:"node,omitempty"`
	// Lease is when Node's run of an approved action ends: past it, any
	// node may settle the action (settle.go).
	Lease   time.Time       `json:"lease,omitzero"`
	Result  json.RawMessage `json:"result,omitempty"`
	Problem *Problem        `json:"problem,omitempty"`

	// Token and Payload are for the executor; never shown.
	Token   string          `json:"token"`
	Payload json.RawMessage `json:"payload"`
	// value is Action.Value as a number.
	value uint64
}

// AgentAction is the action to run again, marked approved.
func (p *Pending) AgentAction() agents.Action {
	return agents.Action{Name: p.Action.Name, Resource: p.Action.Resource, Value: p.value, Risk: p.Action.Risk, Approved: true}
}

// View is a record as the owner and the agent see it: without the token
// and the payload.
type View struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	State      string          `json:"state"`
	Owner      string          `json:"owner"`
	Agent      string          `json:"agent"`
	Delegation string          `json:"delegation"`
	Chain      string          `json:"chain"`
	Action     ActionView      `json:"action"`
	Summary    string          `json:"summary"`
	Digest     string          `json:"action_digest"`
	Created    time.Time       `json:"created"`
	Expires    time.Time       `json:"expires"`
	Decided    *time.Time      `json:"decided,omitempty"`
	DecidedBy  string          `json:"decided_by,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	Problem    *Problem        `json:"problem,omitempty"`
}

// View is the record without what only the executor reads.
func (p *Pending) View() View {
	return View{
		ID: p.ID, Kind: p.Kind, State: p.State, Owner: p.Owner, Agent: p.Agent, Delegation: p.Delegation,
		Chain: p.Chain, Action: p.Action, Summary: p.Summary, Digest: p.Digest, Created: p.Created,
		Expires: p.Expires, Decided: p.Decided, DecidedBy: p.DecidedBy, Result: p.Result, Problem: p.Problem,
	}
}

// Executor runs an approved action of its kind again, as its agent's, and
// returns its answer (JSON). It must decide the action afresh
// (Pending.AgentAction is marked approved, nothing more): the chain may be
// revoked and the limits spent since it was asked. Its error, if it
// carries a problem, is recorded as the action's Problem.
type Executor func(ctx context.Context, p Pending) (json.RawMessage, error)

// Config configures a Queue. Zero values are the documented defaults.
type Config struct {
	// Store holds the records (required; its record key seals them).
	Store *store.Store
	// Node names this node in the records of the actions it ran.
	Node string
	// Expiry is how long an action waits: default DefaultExpiry, at most
	// MaxExpiry.
	Expiry time.Duration
	// Notify is told of every record this node changed (enqueued,
	// decided, run), after it is stored: the realm pushes it to the
	// owner's live connections. It must not block.
	Notify func(Pending)
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Queue is the owner's approval queue. Safe for concurrent use; every
// node opens its own over the same bucket.
type Queue struct {
	bucket *store.Bucket
	node   string
	expiry time.Duration
	notify func(Pending)
	log    *slog.Logger
	now    func() time.Time

	// running marks the approved actions whose outcome is not stored yet
	// (settle.go).
	running *store.Bucket

	mu        sync.RWMutex
	executors map[string]Executor
	settlers  map[string]Executor
	stopAt    func(p Pending, ran bool) bool
}

// Open declares the bucket and returns the queue.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.Store == nil {
		return nil, errors.New("approval: Config.Store is required")
	}
	if cfg.Expiry == 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.Expiry < 0 || cfg.Expiry > MaxExpiry {
		return nil, fmt.Errorf("approval: Config.Expiry %s: want more than 0 and at most %s", cfg.Expiry, MaxExpiry)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func(Pending) {}
	}
	// A record is read back right after another node changed it (the
	// owner approves on another node than the one the agent reached), and
	// what it reads decides: whether the action is still pending (the
	// owner's step-up is spent on it), and what the owner and the agent are
	// told came of it. A replica's direct get may lag an acknowledged
	// change, so that a node reads "approved" after another answered
	// "done": every read asks the stream leader. Records are few and read
	// seldom (one per waiting action, polled every few seconds).
	b, err := cfg.Store.Bucket(ctx, store.BucketConfig{Name: Bucket, TTL: recordTTL, Sealed: true, LeaderReads: true})
	if err != nil {
		return nil, fmt.Errorf("approval: open the queue: %w", err)
	}
	running, err := cfg.Store.Bucket(ctx, store.BucketConfig{Name: RunningBucket, TTL: recordTTL, Sealed: true, LeaderReads: true})
	if err != nil {
		return nil, fmt.Errorf("approval: open the queue's running actions: %w", err)
	}
	return &Queue{bucket: b, running: running, node: cfg.Node, expiry: cfg.Expiry, notify: cfg.Notify, log: cfg.Logger, now: cfg.Now,
		executors: map[string]Executor{}, settlers: map[string]Executor{}}, nil
}

// Expiry is how long an action waits for its owner.
func (q *Queue) Expiry() time.Duration { return q.expiry }

// Handle registers the executor of kind. The composition root calls it
// once per kind, before the realm serves.
func (q *Queue) Handle(kind string, run Executor) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.executors[kind] = run
}

func (q *Queue) executor(kind string) (Executor, bool) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	run, ok := q.executors[kind]
	return run, ok
}

// NewID is a fresh action id: "pa_" and 32 hex digits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "pa_" + hex.EncodeToString(b[:])
}

// ValidID reports whether s is an action id NewID could have made.
func ValidID(s string) bool {
	rest, ok := strings.CutPrefix(s, "pa_")
	if !ok || len(rest) != 32 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func key(owner, id string) string { return owner + "." + id }

// validOwner: an avatar id is one key token (no dot, no wildcard).
func validOwner(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Enqueue stores the action as pending for its agent's owner, and tells
// Notify. The owner approves it with a step-up bound to Pending.Digest.
func (q *Queue) Enqueue(ctx context.Context, r Request) (Pending, error) {
	switch {
	case r.Agent == nil || r.Agent.Chain == nil:
		return Pending{}, errors.New("approval: Request.Agent is required")
	case r.Kind == "" || len(r.Kind) > 32:
		return Pending{}, errors.New("approval: Request.Kind must be 1 to 32 bytes")
	case len(r.Payload) > MaxPayload:
		return Pending{}, fmt.Errorf("approval: payload of %d bytes: at most %d", len(r.Payload), MaxPayload)
	case len(r.Payload) > 0 && !json.Valid(r.Payload):
		return Pending{}, errors.New("approval: payload is not JSON")
	}
	if _, ok := q.executor(r.Kind); !ok {
		return Pending{}, fmt.Errorf("%w: %q", ErrNoExecutor, r.Kind)
	}
	owner := r.Agent.Owner()
	n, err := q.pendingOf(ctx, owner)
	if err != nil {
		return Pending{}, err
	}
	if n >= MaxPendingPerOwner {
		return Pending{}, &problem.Error{Status: http.StatusTooManyRequests, Type: TypeQueueFull, Err: ErrQueueFull,
			Detail: fmt.Sprintf("%d actions already wait for this owner's approval: wait for the owner to decide them", MaxPendingPerOwner)}
	}
	now := q.now().UTC()
	act := r.Action
	act.Approved = false
	p := Pending{
		ID: NewID(), Kind: r.Kind, Owner: owner, Agent: r.Agent.ID, Delegation: r.Agent.Chain.Leaf().ID,
		Chain: r.Agent.Chain.Path(), Summary: r.Summary, State: StatePending,
		Action:  ActionView{Name: act.Name, Resource: act.Resource, Value: strconv.FormatUint(act.Value, 10), Risk: act.Risk},
		Created: now, Expires: now.Add(q.expiry), Token: r.Agent.Chain.Token(), Payload: r.Payload, value: act.Value,
	}
	d := agents.ApprovalDigest(r.Agent, act, p.ID)
	p.Digest = "0x" + hex.EncodeToString(d[:])
	data, err := json.Marshal(p)
	if err != nil {
		return Pending{}, err
	}
	if _, err := q.bucket.Create(ctx, key(owner, p.ID), data); err != nil {
		return Pending{}, fmt.Errorf("approval: enqueue: %w", err)
	}
	q.notify(p)
	return p, nil
}

// pendingOf counts the owner's records still pending.
func (q *Queue) pendingOf(ctx context.Context, owner string) (int, error) {
	ps, err := q.List(ctx, owner)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.State == StatePending {
			n++
		}
	}
	return n, nil
}

// decode reads a stored record.
func decode(data []byte) (Pending, error) {
	var p Pending
	if err := json.Unmarshal(data, &p); err != nil {
		return Pending{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !ValidID(p.ID) || p.Owner == "" || p.Kind == "" || p.Digest == "" {
		return Pending{}, fmt.Errorf("%w: a required member is missing", ErrMalformed)
	}
	v, err := strconv.ParseUint(p.Action.Value, 10, 64)
	if err != nil {
		return Pending{}, fmt.Errorf("%w: action value %.20q", ErrMalformed, p.Action.Value)
	}
	p.value = v
	return p, nil
}

// load reads owner's record id with its revision. A pending record past
// its expiry reads as expired (and is stored so, at best effort).
func (q *Queue) load(ctx context.Context, owner, id string) (Pending, uint64, error) {
	return q.loadOnce(ctx, owner, id, false)
}

// loadOnce is load; retried says the record was read once already.
func (q *Queue) loadOnce(ctx context.Context, owner, id string, retried bool) (Pending, uint64, error) {
	if !ValidID(id) {
		return Pending{}, 0, notFound(id)
	}
	e, err := q.bucket.Get(ctx, key(owner, id))
	if errors.Is(err, store.ErrNotFound) {
		return Pending{}, 0, notFound(id)
	}
	if err != nil {
		return Pending{}, 0, err
	}
	p, err := decode(e.Value)
	if err != nil {
		return Pending{}, 0, err
	}
	if p.Owner != owner {
		return Pending{}, 0, notFound(id)
	}
	if p.State == StatePending && !q.now().Before(p.Expires) {
		p.State = StateExpired
		rev, err := q.store(ctx, &p, e.Revision)
		if err == nil {
			q.notify(p)
			return p, rev, nil
		}
		if errors.Is(err, store.ErrConflict) && !retried {
			// Decided (or expired) on another node between the read and
			// the write: what it says now is the answer, not "expired".
			return q.loadOnce(ctx, owner, id, true)
		}
	}
	return p, e.Revision, nil
}

func notFound(id string) error {
	return &problem.Error{Status: http.StatusNotFound, Type: problem.NotFound, Err: ErrNotFound, Detail: "no pending action " + strconv.Quote(id) + " of this owner"}
}

func (q *Queue) store(ctx context.Context, p *Pending, rev uint64) (uint64, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return 0, err
	}
	return q.bucket.Update(ctx, key(p.Owner, p.ID), data, rev)
}

// Get is owner's action id.
func (q *Queue) Get(ctx context.Context, owner, id string) (Pending, error) {
	p, _, err := q.load(ctx, owner, id)
	return p, err
}

// List is the owner's actions, newest first: the pending ones and those
// decided within the last day.
func (q *Queue) List(ctx context.Context, owner string) ([]Pending, error) {
	if !validOwner(owner) {
		return nil, nil
	}
	keys, err := q.bucket.KeysMatching(ctx, owner+".*")
	if err != nil {
		return nil, err
	}
	var out []Pending
	for _, k := range keys {
		_, id, _ := strings.Cut(k, ".")
		p, _, err := q.load(ctx, owner, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if errors.Is(err, ErrMalformed) {
			q.log.Warn("approval: ignoring a record that does not read", "key", k, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pending) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// decide moves owner's pending action id to state, by whom, with one
// compare-and-set: of two concurrent decisions, on any nodes, one wins
// and the other is told the action is no longer pending. check, if not
// nil, runs after the record is read and before it changes (the owner's
// step-up is spent there, only for an action still pending).
func (q *Queue) decide(ctx context.Context, owner, id, state, by string, check func(Pending) error) (Pending, uint64, error) {
	p, rev, err := q.load(ctx, owner, id)
	if err != nil {
		return Pending{}, 0, err
	}
	if err := q.stillPending(p); err != nil {
		return p, 0, err
	}
	if check != nil {
		if err := check(p); err != nil {
			return p, 0, err
		}
	}
	if state == StateApproved {
		// Marked before the record says approved, so that no approved
		// record goes unmarked; a mark whose approval lost is cleared by
		// the reconciler (settle.go).
		if err := q.markRunning(ctx, p); err != nil {
			return p, 0, err
		}
	}
	now := q.now().UTC()
	p.State, p.Decided, p.DecidedBy = state, &now, by
	if state == StateApproved {
		p.Node, p.Lease = q.node, now.Add(leaseFor)
	}
	rev, err = q.store(ctx, &p, rev)
	if errors.Is(err, store.ErrConflict) {
		// Another decision, on any node, changed the record first: the
		// leader's record says which. (It may read pending again only if
		// that change was itself undone, which no decision does: this one
		// lost anyway.)
		cur, _, lerr := q.load(ctx, owner, id)
		if lerr != nil {
			return p, 0, lerr
		}
		if perr := q.stillPending(cur); perr != nil {
			return cur, 0, perr
		}
		return cur, 0, &problem.Error{Status: http.StatusConflict, Type: TypeNotPending, Err: ErrNotPending,
			Detail: fmt.Sprintf("the action %s was decided concurrently: read it again", id)}
	}
	if err != nil {
		return p, 0, err
	}
	q.notify(p)
	return p, rev, nil
}

func (q *Queue) stillPending(p Pending) error {
	switch p.State {
	case StatePending:
		return nil
	case StateExpired:
		return &problem.Error{Status: http.StatusConflict, Type: TypeExpired, Err: ErrExpired,
			Detail: fmt.Sprintf("the action %s expired at %s without a decision: the agent may ask again", p.ID, p.Expires.Format(time.RFC3339))}
	}
	return &problem.Error{Status: http.StatusConflict, Type: TypeNotPending, Err: ErrNotPending,
		Detail: fmt.Sprintf("the action %s is %s, no longer pending", p.ID, p.State)}
}

// Approve approves owner's pending action id and runs it, once: confirm
// spends the owner's step-up for the action's digest (it is called only
// for an action still pending), then the record moves to approved with a
// compare-and-set that only one node wins, the executor of its kind runs
// it and the record keeps what came of it (done with the result, or
// failed with the problem). The record is returned either way; the error
// is a refusal of the approval itself (not pending, no step-up, the store).
func (q *Queue) Approve(ctx context.Context, owner, id string, confirm func(digest []byte) error) (Pending, error) {
	p, rev, err := q.decide(ctx, owner, id, StateApproved, owner, func(p Pending) error {
		if _, ok := q.executor(p.Kind); !ok {
			return fmt.Errorf("%w: %q", ErrNoExecutor, p.Kind)
		}
		d, err := hex.DecodeString(strings.TrimPrefix(p.Digest, "0x"))
		if err != nil {
			return fmt.Errorf("%w: digest", ErrMalformed)
		}
		return confirm(d)
	})
	if err != nil {
		return p, err
	}
	run, _ := q.executor(p.Kind)
	if q.stopsAt(p, false) {
		return p, nil
	}
	// The approval is on record: the run must end on record too, whether
	// or not the owner's request is still there to hear it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), executionTimeout)
	defer cancel()
	result, rerr := run(rctx, p)
	if q.stopsAt(p, true) {
		return p, nil
	}
	q.finish(rctx, &p, rev, result, rerr)
	return p, nil
}

// problemOf is what a client would have been told of err.
func problemOf(err error) *Problem {
	if pe, ok := problem.As(err); ok {
		t := pe.Type
		if t == "" {
			t = problem.Forbidden
		}
		return &Problem{Status: pe.Status, Type: t.URI(), Detail: pe.Detail}
	}
	return &Problem{Status: http.StatusInternalServerError, Type: "about:blank", Detail: "the action could not be carried out"}
}

// Reject refuses owner's pending action id.
func (q *Queue) Reject(ctx context.Context, owner, id string) (Pending, error) {
	p, _, err := q.decide(ctx, owner, id, StateRejected, owner, nil)
	return p, err
}

// Cancel withdraws a pending action on behalf of the agent that asked for
// it; another agent's is not found.
func (q *Queue) Cancel(ctx context.Context, owner, id, agent string) (Pending, error) {
	p, _, err := q.decide(ctx, owner, id, StateCancelled, agent, func(p Pending) error {
		if p.Agent != agent {
			return notFound(id)
		}
		return nil
	})
	return p, err
}
