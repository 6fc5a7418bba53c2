package decide

import (
	"context"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// EvaluateAgent is DecideAgent for a part that records the decision itself
// together with what came of it (a twin command, whose one audit event
// holds the decision and its gateway's answer): it returns the event
// rather than recording it. awaitsOwner is as DecideAgentAndWait's: the
// delegation wants its owner's approval first.
func (s *Service) EvaluateAgent(ctx context.Context, sc *scenes.Scene, p edge.Principal, act agents.Action, resource policy.UID, extra map[string]any) (d policy.Decision, ev audit.Event, awaitsOwner bool, err error) {
	d, ev, err = s.evaluateAgent(ctx, sc, p, act, resource, extra)
	if err != nil {
		return policy.Decision{}, audit.Event{}, false, err
	}
	return d, ev, !d.Allow && d.Reason == agentReasonApproval, nil
}
