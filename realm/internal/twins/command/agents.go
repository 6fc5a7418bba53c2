package command

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/strictjson"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// Commands by agents (docs/agents.md). An agent commands an actuator for
// its owner within its delegation. There is no step-up: the agent holds
// none of its owner's passkeys, and the owner confirmed the delegation
// with one. Its delegation decides first (the actuator, commands per
// minute, the highest risk it may take, never critical), then the same
// Cedar policies as a person's, with the agent as the principal. A
// high-risk command waits in the owner's approval queue and runs when the
// owner approves it with a passkey step-up bound to it: that approval is
// the command's step-up (context.step_up). The grant names the owner and
// the delegation chain, so the gateway refuses it if any of them is
// revoked before it arrives.

// ApprovalKind names agents' commands in the owner's approval queue.
const ApprovalKind = "command"

// StatusPendingOwner is the status of an agent's command that waits for
// its owner's approval (Answer.OwnerApproval says where).
const StatusPendingOwner = "pending_owner_approval"

// agentCommand is what the queue keeps to run an approved command again:
// the route's path, its Idempotency-Key and its body.
type agentCommand struct {
	Twin     string              `json:"twin"`
	Actuator string              `json:"actuator"`
	Key      string              `json:"key"`
	Request  twin.CommandRequest `json:"request"`
}

func agentAction(c twin.Command, a twin.Actuator, approved bool) agents.Action {
	return agents.Action{Name: agents.ActionCommandActuator, Resource: agents.Resource{Kind: agents.KindActuator, ID: c.Twin + "/" + c.Actuator},
		Risk: a.Risk, Approved: approved}
}

// executeAgent decides an agent's command and carries it out, or queues it
// for the owner. approved: the owner approved this very command (it runs
// from the queue).
func (s *Service) executeAgent(ctx context.Context, op Operator, c twin.Command, cr twin.CommandRequest, approved, claimed bool) (*Answer, error) {
	if s.deps.Agents == nil {
		return nil, &Error{Kind: Forbidden, Detail: "this realm node does not take agents' commands"}
	}
	_, a, err := s.guard.Check(c)
	if err != nil {
		return nil, err
	}
	sc := s.sceneOf[c.Twin]
	st, err := s.standing(sc, op, cr.Zone)
	if err != nil {
		return nil, err
	}
	cr.Zone = st.zone
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	act := agentAction(c, a, approved)
	d, ev, awaits, err := s.deps.Agents.DecideAgent(ctx, sc, op, act, resource, commandContext(st.zone, approved, false))
	if err != nil {
		return nil, err
	}
	if awaits && !approved {
		// On record as waiting: the decision comes when the owner does.
		s.deps.Auditor.RecordQueued(ctx, ev)
		return s.awaitOwner(ctx, op, c, a, cr, act)
	}
	if !d.Allow {
		s.deps.Auditor.RecordQueued(ctx, ev)
		return nil, &Error{Kind: AgentForbidden, Detail: "the agent may not make this command: " + d.Reason, Err: &policyDeny{d}}
	}
	hash := c.Hash()
	return s.deliver(ctx, c, hash, a, cr, d, ev, s.disp.AgentGrantFor(c, hash, op.Avatar.ID, op.Agent.Chain.IDs()), nil, claimed)
}

// awaitOwner queues an agent's command for its owner's approval.
func (s *Service) awaitOwner(ctx context.Context, op Operator, c twin.Command, a twin.Actuator, cr twin.CommandRequest, act agents.Action) (*Answer, error) {
	if s.deps.Approvals == nil {
		return nil, &Error{Kind: Forbidden, Detail: "needs-owner-approval: this realm node has no approval queue for agents' commands"}
	}
	payload, err := json.Marshal(agentCommand{Twin: c.Twin, Actuator: c.Actuator, Key: c.Key, Request: cr})
	if err != nil {
		return nil, err
	}
	what := "stop"
	if c.Op == twin.OpSet {
		what = fmt.Sprintf("set to %g %s", twin.FromMicro(c.ValueMicro), a.Unit)
	}
	pa, err := s.deps.Approvals.Enqueue(ctx, approval.Request{
		Kind: ApprovalKind, Agent: op.Agent, Action: act, Payload: payload,
		Summary: fmt.Sprintf("%s risk command: %s/%s %s", a.Risk, c.Twin, c.Actuator, what),
	})
	if err != nil {
		return nil, err
	}
	view := pa.View()
	return &Answer{Status: StatusPendingOwner, Command: ViewCommand(c, a, cr), OwnerApproval: &view}, nil
}

// RunApproved is the approval queue's executor of agents' commands: the
// command its owner approved, decided again now as the agent's (the chain
// verified and not revoked, the delegation's rate and risk, the scene's
// policies, with the owner's approval as its step-up) and carried out.
// Its result is the command's answer. Its grant is recorded in flight,
// bound to the approval, before it leaves (approved.go): an answer that
// does not tell what the command came to (the gateway still carrying out
// an earlier grant of it, a delivery with no verified answer) is
// approval.ErrOutcomeUnknown, and the command is settled from the
// gateway's journal (SettleApproved).
func (s *Service) RunApproved(ctx context.Context, pa approval.Pending) (json.RawMessage, error) {
	if s.deps.Resumer == nil {
		return nil, &Error{Kind: Forbidden, Detail: "this realm node does not take agents' commands"}
	}
	ac, err := decodeAgentCommand(pa.Payload)
	if err != nil {
		return nil, err
	}
	op, err := s.deps.Resumer.ResumeAgent(ctx, pa.Token)
	if err != nil {
		return nil, err
	}
	c, err := twin.NewCommand(ac.Twin, ac.Actuator, op.ID(), ac.Key, ac.Request)
	if err != nil {
		return nil, err
	}
	answer, err := s.executeAgent(withApproval(ctx, approvalRef(pa)), op, c, ac.Request, true, true)
	if err != nil {
		return nil, s.settle.unlessSent(ctx, c.Hash(), approvalRef(pa), err)
	}
	if answer.Status == StatusPendingOwner {
		return nil, &Error{Kind: Forbidden, Detail: "the command still needs its owner's approval when it runs"}
	}
	return json.Marshal(answer)
}

// decodeAgentCommand reads the command a queued action keeps.
func decodeAgentCommand(payload json.RawMessage) (agentCommand, error) {
	var ac agentCommand
	if err := strictjson.Check(payload); err != nil {
		return ac, fmt.Errorf("%w: command payload: %w", approval.ErrMalformed, err)
	}
	if err := json.Unmarshal(payload, &ac); err != nil {
		return ac, fmt.Errorf("%w: command payload: %w", approval.ErrMalformed, err)
	}
	return ac, nil
}
