package command

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// The actions an approver's decision is audited as.
const (
	ActionApprove = "ApproveCommand"
	ActionReject  = "RejectCommand"
)

// LoadApproval reads the approval whose id (the command hash, 0x and 64
// hex digits) is id, with its revision for an update.
func (s *Service) LoadApproval(ctx context.Context, id string) (Approval, uint64, error) {
	id = strings.TrimPrefix(strings.ToLower(id), "0x")
	if len(id) != 64 {
		return Approval{}, 0, errBadApprovalID
	}
	if _, err := hex.DecodeString(id); err != nil {
		return Approval{}, 0, errBadApprovalID
	}
	e, err := s.approvals.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Approval{}, 0, errNoApproval
	}
	if err != nil {
		return Approval{}, 0, err
	}
	var rec Approval
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return Approval{}, 0, err
	}
	return rec, e.Revision, nil
}

// PendingApprovals are the commands waiting for a second operator; one
// that cannot be read is left out.
func (s *Service) PendingApprovals(ctx context.Context) ([]Approval, error) {
	keys, err := s.approvals.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Approval
	for _, k := range keys {
		rec, _, err := s.LoadApproval(ctx, k)
		if err != nil || rec.Status != StatusPendingApproval {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// DecideApproval is a second operator's decision on rec, read at revision
// rev. A rejection is recorded and returned; the caller audits it. An
// approval is an ApproveCommand decision for the approver, their own
// step-up bound to the command hash, and then the command itself, decided
// again for its requester, whose session must still be live. The record
// returned carries what came of it.
func (s *Service) DecideApproval(ctx context.Context, op Operator, rec Approval, rev uint64, approve bool) (Approval, error) {
	c := rec.Command
	resource := scenes.ActuatorUID(c.Twin, c.Actuator)
	if rec.Status != StatusPendingApproval {
		return rec, &Error{Kind: Conflict, Detail: "this command is no longer waiting for approval: " + rec.Status}
	}
	if approve && op.Avatar.ID == rec.Requester {
		return rec, errSelfApproval
	}
	sc := s.sceneOf[c.Twin]
	as := s.deps.Trust.Assess(ctx, op.Session)
	d := s.deps.Decider.Decide(ctx, sc, op, as, scenes.ActionApproveCommand, resource, map[string]any{"command": c.Hash().Hex()})
	if !d.Allow {
		return rec, denied("policy: "+d.Reason, d)
	}
	if approve {
		hash := c.Hash()
		if err := s.deps.StepUps.Consume(ctx, op.Session.ID, hash[:]); err != nil {
			return rec, err
		}
	}
	rec.Approver = op.Avatar.ID
	rec.Status = map[bool]string{true: StatusInProgress, false: StatusRejected}[approve]
	if approve {
		// Past it, any node settles the command (critical.go).
		rec.Lease = s.deps.Clock.Now().UTC().Add(s.crit.leaseFor())
	}
	data, _ := json.Marshal(rec)
	var err error
	if rev, err = s.approvals.Update(ctx, approvalKey(c), data, rev); err != nil {
		return rec, err
	}
	if !approve || s.crit.stops(c, false) {
		return rec, nil
	}
	answer, unknown, err := s.runCritical(ctx, rec, op)
	if s.crit.stops(c, true) {
		return rec, nil
	}
	cctx, cancel := store.Cleanup(ctx)
	defer cancel()
	stored, uerr := s.storeCritical(cctx, rec, rev, answer, err, unknown)
	if uerr != nil {
		// Left in_progress: a node settles it after its lease.
		s.log.Warn("record approval outcome", "err", uerr)
	}
	return stored, err
}

func (s *Service) executeApproved(ctx context.Context, rec Approval, approver Operator) (*Answer, error) {
	sess, err := s.deps.Sessions.Get(ctx, rec.Session)
	if err != nil || sess.Revoked || s.deps.Clock.Now().After(sess.Expires) {
		return nil, errRequesterGone
	}
	av, err := s.deps.Avatars.Get(ctx, sess.Avatar)
	if err != nil {
		return nil, errRequesterGone
	}
	requester := Operator{Session: sess, Avatar: av}
	_, a, err := s.guard.Check(rec.Command)
	if err != nil {
		return nil, err
	}
	as := s.deps.Trust.Assess(ctx, sess)
	// Decided again where the realm sees the requester now, not where it
	// saw them when they asked: the machine moves now, and the requester
	// must still see it. Its grant is recorded in flight, bound to the
	// approval by ctx (runCritical), before it leaves.
	return s.carryOut(ctx, s.sceneOf[rec.Command.Twin], requester, as, rec.Command, a, twin.CommandRequest{Reason: rec.Reason}, true, []string{approver.Avatar.ID}, approvalOf(ctx) != "")
}

// Approved is what the approval's answer shows: the approval, its
// command and, once carried out, what came of it.
func (s *Service) Approved(rec Approval) map[string]any {
	_, a, _ := s.reg.Lookup(rec.Command.Twin, rec.Command.Actuator)
	out := map[string]any{"approval": rec.View(), "command": ViewCommand(rec.Command, a, twin.CommandRequest{Reason: rec.Reason, Zone: rec.Zone})}
	if rec.Answer != nil {
		out["answer"] = rec.Answer
	}
	return out
}
