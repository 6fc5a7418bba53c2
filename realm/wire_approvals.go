package realm

import (
	"context"
	"fmt"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/realm/internal/approvals"
	"github.com/zerorealm/zerorealm/realm/internal/market"
)

// The owner's approval queue of agents' actions (agents/approval, served
// and reconciled by realm/internal/approvals), and agents' transfers in
// the market, which wait in it above their auto-approval value.

// startApprovals opens the queue, registers the runner of each kind of
// action that may wait in it, and binds its users; after the agents' guard.
func (r *Realm) startApprovals(ctx context.Context) error {
	q, err := approval.Open(ctx, approval.Config{
		Store: r.store, Node: r.cfg.Node, Expiry: r.cfg.AgentApprovalExpiry, Logger: r.log, Now: r.cfg.Clock.Now,
		Notify: func(p approval.Pending) {
			if r.live != nil {
				r.live.NoticeAvatar(p.Owner, approvals.Message(p, r.cfg.Clock.Now()))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	approvals.Register(q, market.ApprovalKind, r.market)
	r.approvalQueue = q
	r.market.BindAgents(market.AgentDeps{Decider: r.decisions, Approvals: q, Resumer: r.edge})
	return r.approvals.Bind(approvals.Deps{Log: r.log, Queue: q, StepUps: r.stepups, AuditNoWait: r.decisions.RecordQueued, Settler: q})
}
