package decide

import (
	"context"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// DecideAgentAndWait is DecideAgent for an action that must not happen
// unless its decision is on record (a transfer): it returns once the
// decision is stored in the audit log. awaitsOwner reports that the
// agent's delegation wants its owner's approval first: the decision is a
// refusal for now (nothing was decided by Cedar, nothing spent), which a
// part that queues the action for the owner answers with 202.
func (s *Service) DecideAgentAndWait(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any, entities ...policy.Entity) (d policy.Decision, awaitsOwner bool, err error) {
	d, ev, err := s.evaluateAgent(ctx, sc, p, act, resource, extra, entities...)
	if err != nil {
		return policy.Decision{}, false, err
	}
	if err := s.RecordAndWait(ctx, ev); err != nil {
		return policy.Decision{}, false, err
	}
	return d, !d.Allow && d.Reason == agentReasonApproval, nil
}
