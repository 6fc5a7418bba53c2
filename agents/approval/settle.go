package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Settling an approved action whose node stopped. The node that wins the
// approval runs the action and stores what came of it; a node that stops
// (or loses its store) in between would leave the record approved for
// good, and the owner and the agent would never learn the outcome. So:
//
//   - the approving node marks the action as running (the RunningBucket,
//     keyed like the record) before the record says approved, and the
//     record carries the node and its lease: the end of its run
//     (executionTimeout) plus a grace;
//   - every node's reconciler reads the marks (Queue.SettleStale); an
//     action still approved past its lease is taken with one
//     compare-and-set on the record's revision (it names the settling
//     node and a new lease), so that of the nodes that find it at once,
//     one settles it;
//   - the settler of its kind finds out what the action came to, from
//     the part that knows (a transfer from the ledger by its digest, a
//     twin command from its gateway's journal), or runs it now, decided
//     afresh as the agent's, if it never took effect. What it returns is
//     stored as the runner would have stored it: done with the result, or
//     failed with the problem;
//   - ErrOutcomeUnknown is not an outcome (a gateway still carrying the
//     command out, a gateway that cannot be asked now): the record stays
//     approved with a short lease, and any node asks again later.
//
// The mark goes when the outcome is stored, or, left behind, when the
// reconciler reads a record that is no longer approved.

// RunningBucket marks the approved actions whose outcome is not stored
// yet, keyed <owner>.<id> as the records are: the reconciler reads these
// few keys rather than every record of the last two days.
const RunningBucket = "agent-approvals-running"

// leaseGrace is added to executionTimeout: a run that reached its
// deadline has returned and stored what it could by then.
const leaseGrace = 5 * time.Second

// leaseFor is how long after approving (or taking) an action a node may
// run it before others settle it.
const leaseFor = executionTimeout + leaseGrace

// retryUnknown is how soon an action whose outcome was not known yet is
// asked about again.
const retryUnknown = 3 * time.Second

// maxSettlePerPass bounds the records one pass of the reconciler reads.
const maxSettlePerPass = 256

// ErrOutcomeUnknown is what an executor or a settler returns when what
// the action came to cannot be told yet: the record stays approved and
// any node asks again shortly. It is never an action's outcome.
var ErrOutcomeUnknown = errors.New("approval: what the approved action came to is not known yet")

// running is a mark's value.
type running struct {
	At   time.Time `json:"at"`
	Node string    `json:"node"`
}

// HandleSettle registers the settler of kind: given an approved action
// whose node stopped before storing its outcome, it returns what the
// action came to, as the executor would have (running it now if it
// never took effect), or ErrOutcomeUnknown. The composition root calls it
// once per kind, beside Handle. A kind without one is left approved.
func (q *Queue) HandleSettle(kind string, settle Executor) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.settlers[kind] = settle
}

func (q *Queue) settler(kind string) (Executor, bool) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	s, ok := q.settlers[kind]
	return s, ok
}

// StopAt sets the stop point of a node that dies while it runs an
// approved action: before the executor (ran false), or after it and
// before the outcome is stored (ran true). When stop says so, Approve
// returns the approved record and stores nothing more, as a node that
// stopped there would. Tests reach it through realm/internal/probe; nil
// clears it.
func (q *Queue) StopAt(stop func(p Pending, ran bool) bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopAt = stop
}

func (q *Queue) stopsAt(p Pending, ran bool) bool {
	q.mu.RLock()
	stop := q.stopAt
	q.mu.RUnlock()
	return stop != nil && stop(p, ran)
}

// markRunning marks p as about to run on this node.
func (q *Queue) markRunning(ctx context.Context, p Pending) error {
	data, err := json.Marshal(running{At: q.now().UTC(), Node: q.node})
	if err != nil {
		return err
	}
	if _, err := q.running.Put(ctx, key(p.Owner, p.ID), data); err != nil {
		return fmt.Errorf("approval: mark the action as running: %w", err)
	}
	return nil
}

// clearRunning removes p's mark once its outcome is stored; a mark left
// behind is removed by the next reconciler pass.
func (q *Queue) clearRunning(ctx context.Context, p *Pending) {
	if err := q.running.Delete(ctx, key(p.Owner, p.ID), 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		q.log.Warn("approval: clear the mark of a stored outcome; the reconciler clears it", "id", p.ID, "err", err)
	}
}

// finish stores what an approved action, held at revision rev, came to:
// done with result, failed with rerr's problem, or, for
// ErrOutcomeUnknown, still approved with a short lease. It reports
// whether an outcome was stored.
func (q *Queue) finish(ctx context.Context, p *Pending, rev uint64, result json.RawMessage, rerr error) bool {
	if errors.Is(rerr, ErrOutcomeUnknown) {
		p.Lease = q.now().UTC().Add(retryUnknown)
		if _, err := q.store(ctx, p, rev); err != nil {
			q.log.Warn("approval: hand back an action whose outcome is not known yet; it is settled after its lease", "id", p.ID, "err", err)
		}
		q.log.Info("approval: what an approved action came to is not known yet; it is settled later", "id", p.ID, "err", rerr)
		return false
	}
	if rerr != nil {
		p.State, p.Problem = StateFailed, problemOf(rerr)
		q.log.Info("approval: an approved action was refused when it ran", "id", p.ID, "agent", p.Agent, "err", rerr)
	} else {
		p.State, p.Result = StateDone, result
	}
	if _, err := q.store(ctx, p, rev); err != nil {
		// The record stays approved, which the agent reads as "still
		// running", until a node settles it after its lease.
		q.log.Error("approval: the outcome of an approved action was not stored; it is settled after its lease", "id", p.ID, "state", p.State, "err", err)
		p.State, p.Result, p.Problem = StateApproved, nil, nil
		return false
	}
	q.clearRunning(ctx, p)
	q.notify(*p)
	return true
}

// Settled is an action SettleStale settled, and the node whose run of it
// ended without storing its outcome.
type Settled struct {
	Pending
	Runner string
}

// SettleStale is one pass of the reconciler: it settles the approved
// actions whose node's lease has passed (see the top of this file) and
// returns those it stored an outcome for. Every node runs it every few
// seconds; ctx bounds the pass.
func (q *Queue) SettleStale(ctx context.Context) ([]Settled, error) {
	keys, err := q.running.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("approval: read the running actions: %w", err)
	}
	var out []Settled
	var errs []error
	for i, k := range keys {
		if i == maxSettlePerPass || ctx.Err() != nil {
			break
		}
		s, ok, err := q.settleOne(ctx, k)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, errors.Join(errs...)
}

// settleOne settles the action marked under k if its lease has passed,
// and clears a mark whose record no longer needs it.
func (q *Queue) settleOne(ctx context.Context, k string) (Settled, bool, error) {
	mark, err := q.running.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return Settled{}, false, nil // cleared meanwhile
	}
	if err != nil {
		return Settled{}, false, err
	}
	owner, id, _ := strings.Cut(k, ".")
	e, err := q.bucket.Get(ctx, key(owner, id))
	if errors.Is(err, store.ErrNotFound) {
		q.dropMark(ctx, mark)
		return Settled{}, false, nil
	}
	if err != nil {
		return Settled{}, false, err
	}
	p, err := decode(e.Value)
	if err != nil {
		q.dropMark(ctx, mark)
		return Settled{}, false, fmt.Errorf("approval: running action %s: %w", k, err)
	}
	now := q.now().UTC()
	switch p.State {
	case StateApproved:
	case StatePending:
		// An approval on its way (marked, not yet stored), or one that lost
		// or failed: its mark goes once no approval can still be storing.
		var m running
		if json.Unmarshal(mark.Value, &m) != nil || now.Sub(m.At) > leaseFor {
			q.dropMark(ctx, mark)
		}
		return Settled{}, false, nil
	default:
		q.dropMark(ctx, mark) // its outcome is stored
		return Settled{}, false, nil
	}
	lease := p.Lease
	if lease.IsZero() && p.Decided != nil {
		lease = p.Decided.Add(leaseFor) // approved before leases were recorded
	}
	if now.Before(lease) {
		return Settled{}, false, nil // its node is on it
	}
	settle, ok := q.settler(p.Kind)
	if !ok {
		q.log.Warn("approval: no settler for an approved action whose node stopped; it stays approved", "id", p.ID, "kind", p.Kind)
		return Settled{}, false, nil
	}
	// Taken with a compare-and-set on the revision read: of the nodes
	// that find it at once, one settles it.
	runner := p.Node
	p.Node, p.Lease = q.node, now.Add(leaseFor)
	rev, err := q.store(ctx, &p, e.Revision)
	if errors.Is(err, store.ErrConflict) {
		return Settled{}, false, nil // another node took it, or its runner finished
	}
	if err != nil {
		return Settled{}, false, err
	}
	q.log.Info("approval: settling an approved action whose node stopped", "id", p.ID, "kind", p.Kind, "runner", runner)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), executionTimeout)
	defer cancel()
	result, rerr := settle(rctx, p)
	if !q.finish(rctx, &p, rev, result, rerr) {
		return Settled{}, false, nil
	}
	return Settled{Pending: p, Runner: runner}, true, nil
}

// dropMark removes a mark at the revision read.
func (q *Queue) dropMark(ctx context.Context, mark store.Entry) {
	if err := q.running.Delete(ctx, mark.Key, mark.Revision); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		q.log.Warn("approval: clear a stale mark of a running action", "key", mark.Key, "err", err)
	}
}
