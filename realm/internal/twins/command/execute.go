package command

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
)

// Signals of a command's audit event beyond the policy's, and the result
// recorded when no acknowledgement came back.
const (
	auditDecision     = "decision"
	auditCommand      = "command"
	auditNonce        = "nonce"
	auditValue        = "value"
	auditApprovers    = "approvers"
	auditResult       = "result"
	resultUndelivered = "undelivered"
)

// Execute runs the checks that do not need policy, the step-up, and
// then either queues the command for approval or carries it out. Every
// error refuses the command; IsPolicyDeny tells the policy's refusals,
// which are on the audit record already. A caller that takes the
// command's Idempotency-Key (ClaimCommand) uses ExecuteClaimed, and frees
// the key on an error (ReleaseCommand).
func (s *Service) Execute(ctx context.Context, op Operator, c twin.Command, cr twin.CommandRequest) (*Answer, error) {
	return s.execute(ctx, op, c, cr, false)
}

// ExecuteClaimed is Execute for a command whose Idempotency-Key the
// caller has claimed (ClaimCommand) and will complete or release
// (CompleteCommand, ReleaseCommand): before its grant leaves, the node
// records it as in flight, so that if the node stops before it stores the
// answer, another node asks the gateway what became of it (resolve.go).
func (s *Service) ExecuteClaimed(ctx context.Context, op Operator, c twin.Command, cr twin.CommandRequest) (*Answer, error) {
	return s.execute(ctx, op, c, cr, true)
}

func (s *Service) execute(ctx context.Context, op Operator, c twin.Command, cr twin.CommandRequest, claimed bool) (*Answer, error) {
	if op.Agent != nil {
		return s.executeAgent(ctx, op, c, cr, false, claimed)
	}
	_, a, err := s.guard.Check(c)
	if err != nil {
		return nil, err
	}
	sc := s.sceneOf[c.Twin]
	if cr.Zone != "" {
		// A wrong assertion is refused before it spends a step-up.
		if _, err := s.standing(sc, op, cr.Zone); err != nil {
			return nil, err
		}
	}
	if twin.NeedsStepUp(a.Risk) {
		// Hashed here only when needed: the slice handed on moves the hash
		// to the heap, and carryOut hashes the command for its grant.
		hash := c.Hash()
		if err := s.deps.StepUps.Consume(ctx, op.Session.ID, hash[:]); err != nil {
			return nil, err
		}
	}
	assessment := s.deps.Trust.Assess(ctx, op.Session)
	if twin.NeedsApproval(a.Risk) {
		return s.queueApproval(ctx, sc, op, assessment, c, a, cr)
	}
	return s.carryOut(ctx, sc, op, assessment, c, a, cr, twin.NeedsStepUp(a.Risk), nil, claimed)
}

func commandContext(zone string, stepUp, approved bool) map[string]any {
	return map[string]any{scenes.ContextAvatarZone: zone, scenes.ContextStepUp: stepUp, scenes.ContextApproved: approved}
}

// where is where the realm sees an operator in a scene.
type where struct {
	zone string
	seen fmt.Stringer
}

// standing is where the realm sees the operator for a command on a twin
// of sc: the zone its presence in the scene was admitted into, on this
// node or another, never a zone the client names. The request's zone,
// when given, is only the operator's assertion of where they stand: a
// command asserted from another zone than the one the realm sees is
// refused, since the operator meant it from somewhere else.
func (s *Service) standing(sc *scenes.Scene, op Operator, asserted string) (where, error) {
	zone, seen := s.deps.Locator.WhereIs(sc.ID, op.ID(), op.Session.ID)
	st := where{zone: zone, seen: seen}
	if asserted != "" && asserted != zone {
		return st, &Error{Kind: Forbidden, Detail: fmt.Sprintf("zone_mismatch: the command says you stand in zone %s, but %s", asserted, seen)}
	}
	return st, nil
}

// commandDenied is a policy deny of a command, its reason followed by
// where the realm sees the operator, since that is what most denies turn
// on.
func commandDenied(d policy.Decision, st where) error {
	return denied("policy: "+d.Reason+"; "+st.seen.String(), d)
}

// queueApproval records a critical command for a second operator, once
// the policy says it would be allowed with an approval.
func (s *Service) queueApproval(ctx context.Context, sc *scenes.Scene, op Operator, as trust.Assessment, c twin.Command, a twin.Actuator, cr twin.CommandRequest) (*Answer, error) {
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	// Asked as if approved: the question now is whether anything but the
	// approval stands in the way. The approval itself is decided again
	// when it comes, with the requester's trust at that time.
	st, err := s.standing(sc, op, cr.Zone)
	if err != nil {
		return nil, err
	}
	cr.Zone = st.zone
	d := s.deps.Decider.Decide(ctx, sc, op, as, scenes.ActionCommandActuator, resource, commandContext(st.zone, true, true))
	if !d.Allow {
		return nil, commandDenied(d, st)
	}
	rec := Approval{Command: c, Reason: cr.Reason, Zone: cr.Zone, Requester: op.Avatar.ID, Session: op.Session.ID, Created: s.deps.Clock.Now().UTC(), Status: StatusPendingApproval}
	data, _ := json.Marshal(rec)
	if _, err := s.approvals.Create(ctx, approvalKey(c), data); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, &Error{Kind: Conflict, Detail: "this command is already waiting for approval (GET /v1/approvals)", Err: err}
		}
		return nil, err
	}
	dv := policy.ViewOf(scenes.ActionCommandActuator, resource, d)
	answer := &Answer{Status: StatusPendingApproval, Command: ViewCommand(c, a, cr), Decision: &dv, Approval: rec.View()}
	s.deps.Events.Approval(answer)
	return answer, nil
}

func approvalKey(c twin.Command) string {
	h := c.Hash()
	return hex.EncodeToString(h[:])
}

// decideCommand asks the scene's policies about a command, as Decider
// does, but returns the audit event instead of recording it: carryOut
// records the decision and what came of it as one event.
func (s *Service) decideCommand(ctx context.Context, sc *scenes.Scene, op Operator, as trust.Assessment, resource policy.UID, extra map[string]any) (policy.Decision, audit.Event) {
	pctx, principal := s.deps.Subject(op, as)
	for k, v := range extra {
		pctx[k] = v
	}
	req := policy.Request{
		Principal: policy.UID{Type: scenes.TypeAvatar, ID: op.Avatar.ID},
		Action:    scenes.ActionUID(scenes.ActionCommandActuator),
		Resource:  resource,
		Context:   pctx,
		Entities:  []policy.Entity{principal},
	}
	if shared, ok := s.entities[sc]; ok {
		req.Shared = shared
	} else {
		req.Entities = append(sc.Entities(), req.Entities...)
	}
	d, err := sc.Policies.Decide(ctx, req)
	if err != nil {
		d.Allow = false
		if d.Reason == "" {
			d.Reason = "the request could not be evaluated: " + err.Error()
		}
	}
	ev := audit.Event{Actor: op.Avatar.ID, Action: scenes.ActionCommandActuator, Resource: resource.String(),
		Outcome: audit.Allow, Policies: d.Policies, Signals: pctx}
	if !d.Allow {
		ev.Outcome, ev.Reasons = audit.Deny, []string{d.Reason}
	}
	return d, ev
}

// carryOut takes the policy decision, signs the grant and delivers it.
//
// The decision and its outcome are one audit event, recorded when the
// gateway has answered or the delivery has failed, whichever way carryOut
// returns: allow when the gateway carried the command out, deny otherwise,
// with the deciding policies, the signals (decision: allow) and the grant's
// command hash and nonce. A policy deny is recorded at once.
func (s *Service) carryOut(ctx context.Context, sc *scenes.Scene, op Operator, as trust.Assessment, c twin.Command, a twin.Actuator, cr twin.CommandRequest, stepUp bool, approvers []string, claimed bool) (*Answer, error) {
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	st, err := s.standing(sc, op, cr.Zone)
	if err != nil {
		return nil, err
	}
	cr.Zone = st.zone
	d, ev := s.decideCommand(ctx, sc, op, as, resource, commandContext(st.zone, stepUp, len(approvers) > 0))
	if !d.Allow {
		s.deps.Auditor.RecordQueued(ctx, ev)
		return nil, commandDenied(d, st)
	}
	hash := c.Hash()
	return s.deliver(ctx, c, hash, a, cr, d, ev, s.disp.GrantFor(c, hash, op.Session.ID, approvers), approvers, claimed)
}

// deliver sends an allowed command's signed grant to its gateway and
// records the decision with what came of it (see carryOut). claimed: the
// command's Idempotency-Key is held for it (ExecuteClaimed).
func (s *Service) deliver(ctx context.Context, c twin.Command, hash common.Hash, a twin.Actuator, cr twin.CommandRequest, d policy.Decision, ev audit.Event, sg twin.SignedGrant, approvers []string, claimed bool) (*Answer, error) {
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	hashHex := hash.Hex()
	issued := time.Now()
	ev.Signals[auditDecision] = string(audit.Allow)
	ev.Signals[auditCommand] = hashHex
	ev.Signals[auditNonce] = sg.Grant.Nonce
	ev.Signals[auditValue] = c.Value()
	ev.Signals[auditApprovers] = approvers
	ev.Signals[auditResult] = resultUndelivered
	ev.Outcome, ev.Reasons = audit.Deny, []string{"the grant was signed but the delivery did not complete"}
	defer func() { s.deps.Auditor.RecordQueued(ctx, ev) }()

	dv := policy.ViewOf(scenes.ActionCommandActuator, resource, d)
	answer := &Answer{Command: viewCommandHashed(c, hashHex, a, cr), Decision: &dv,
		Grant: &SignedView{TypedData: lazyTypedData(sg.Grant.TypedData), Signature: sg.Signature.Hex(), Signer: s.signerHex}}
	if claimed {
		if err := s.settle.mark(ctx, c, sg.Grant, answer, false); err != nil {
			// Without the record, a stop before the answer is stored could
			// not be resolved: the grant does not leave.
			ev.Reasons = []string{"policy allowed; the grant was not sent: " + err.Error()}
			return nil, err
		}
	}
	sa, err := s.disp.Deliver(ctx, sg)
	if s.deps.CommandTimed != nil {
		outcome := string(sa.Ack.Result)
		if err != nil && outcome == "" {
			outcome = resultUndelivered
		}
		s.deps.CommandTimed(outcome, time.Since(issued))
	}
	if err != nil && sa.Ack.Result == "" {
		// No verified answer: whether the gateway acted is unknown to the
		// realm, but the grant expires within seconds either way.
		ev.Reasons = []string{"policy allowed; delivery failed: " + err.Error()}
		return nil, err
	}
	if claimed && notDecidedYet(&sa.Ack) {
		// Not the command's answer: the grant that runs will tell it
		// (resolve.go). The record stays, handed back to whoever asks next.
		ev.Reasons = []string{fmt.Sprintf("policy allowed; gateway: %s %s; the outcome is settled from the gateway's journal", sa.Ack.Reason, sa.Ack.Detail)}
		ev.Signals[auditResult] = string(sa.Ack.Result)
		if err := s.settle.mark(ctx, c, sg.Grant, answer, true); err != nil {
			// The record as first written stays: it is settled after the
			// grant's expiry instead of at once.
			s.log.Warn("hand back a command in flight", "command", hashHex, "err", err)
		}
		return nil, ErrOutcomePending
	}
	ack := sa.Ack
	s.gateways.withAck(answer, sa)
	ev.Signals[auditResult] = string(ack.Result)
	if ack.Result != twin.ResultDone {
		ev.Reasons = []string{fmt.Sprintf("policy allowed; gateway %s: %s %s", ack.Result, ack.Reason, ack.Detail)}
		s.log.Info("gateway refused a grant", "twin", c.Twin, "actuator", c.Actuator, "reason", ack.Reason)
	} else {
		ev.Outcome, ev.Reasons = audit.Allow, []string{"policy allowed; the gateway carried out the grant"}
		s.reg.SetState(c.Twin, c.Actuator, twin.State{Value: twin.FromMicro(ack.ValueMicro), Target: twin.FromMicro(ack.TargetMicro),
			Moving: ack.ValueMicro != ack.TargetMicro, At: twin.FromMillis(ack.At)})
	}
	s.deps.Events.Outcome(answer)
	return answer, nil
}
