package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// ActionSettle is the audited action of a node that settled an approved
// action another node's run left without an outcome.
const ActionSettle = "SettleAgentAction"

// SettleEvery is how often each node looks for approved actions whose
// node stopped before storing their outcome.
const SettleEvery = 5 * time.Second

// Runner is a part that runs its kind of approved action (RunApproved)
// and settles one whose node stopped before storing its outcome
// (SettleApproved: what it came to, from the part's own records, or
// approval.ErrOutcomeUnknown).
type Runner interface {
	RunApproved(ctx context.Context, p approval.Pending) (json.RawMessage, error)
	SettleApproved(ctx context.Context, p approval.Pending) (json.RawMessage, error)
}

// Kinds is the queue as the composition root registers parts with it.
type Kinds interface {
	Handle(kind string, run approval.Executor)
	HandleSettle(kind string, settle approval.Executor)
}

// Register makes r the executor and the settler of kind.
func Register(q Kinds, kind string, r Runner) {
	q.Handle(kind, Run(r.RunApproved))
	q.HandleSettle(kind, Run(r.SettleApproved))
}

// Settler is the queue's reconciler (approval.Queue.SettleStale).
type Settler interface {
	SettleStale(ctx context.Context) ([]approval.Settled, error)
}

// Reconcile settles, every SettleEvery until ctx ends, the approved
// actions whose node stopped before storing their outcome (see
// agents/approval, settle.go), and audits each one it settled. Every node
// runs it; a compare-and-set in the queue lets one settle each action.
func (a *API) Reconcile(ctx context.Context) {
	clock.Every(ctx, clock.Real{}, SettleEvery, a.settleOnce)
}

func (a *API) settleOnce(ctx context.Context) {
	pass, cancel := context.WithTimeout(ctx, 2*SettleEvery)
	defer cancel()
	settled, err := a.Settler.SettleStale(pass)
	if err != nil && ctx.Err() == nil {
		a.Log.Warn("settle approved actions; the next pass retries", "settled", len(settled), "err", err)
	}
	for _, s := range settled {
		a.AuditNoWait(ctx, settledEvent(s))
	}
}

// settledEvent is the audit record of an action a node settled: what it
// came to, which node's run left it, and which node settled it. The
// action itself, when it ran anew, is audited by its part as the agent's
// own decision.
func settledEvent(s approval.Settled) audit.Event {
	ev := audit.Event{
		Actor: s.Agent, Action: ActionSettle, Resource: `AgentAction::"` + s.ID + `"`, Outcome: audit.Allow,
		Reasons: []string{"settled by node " + s.Node + " after node " + s.Runner + " stopped before storing its outcome: " + s.State},
		Signals: map[string]any{"chain": s.Chain, "agent": s.Agent, "action": s.Action, "action_digest": s.Digest, "state": s.State,
			"runner": s.Runner, "node": s.Node},
	}
	if s.State != approval.StateDone {
		ev.Outcome = audit.Deny
		if s.Problem != nil {
			ev.Reasons = append(ev.Reasons, s.Problem.Detail)
		}
	}
	return ev
}

// Run wraps a part's executor so that a refusal is kept as the problem
// the realm would have answered had the agent not waited. An outcome not
// known yet passes as it is.
func Run(exec approval.Executor) approval.Executor {
	return func(ctx context.Context, p approval.Pending) (json.RawMessage, error) {
		out, err := exec(ctx, p)
		if errors.Is(err, approval.ErrOutcomeUnknown) {
			return nil, err
		}
		if err != nil {
			return nil, edge.ProblemOf(err)
		}
		return out, nil
	}
}
