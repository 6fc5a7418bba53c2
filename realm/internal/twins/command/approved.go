package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/twin"
)

// Settling an agent's command its owner approved, when the node that ran
// it stopped before storing what came of it (agents/approval, settle.go).
// The command has no Idempotency-Key of its own to settle under (its
// agent's key answered 202 when it started to wait), so its grant is
// recorded in flight bound to the approval: the same twin-inflight
// record a claimed command has, keyed by the command hash, with
// Approval set. The reconciler of resolve.go leaves such records to the
// approval queue, whose settler (SettleApproved) asks the gateway:
//   - executed or refused: the gateway's journal holds its signed
//     acknowledgement, and the answer the runner would have returned is
//     completed with it;
//   - not executed: the grant expired unseen and never will run: the
//     command is run now, decided afresh as the agent's (RunApproved);
//   - anything else (the grant still live, the gateway away or still
//     carrying the command out): approval.ErrOutcomeUnknown, and the
//     queue asks again shortly. command_in_progress is never an outcome.
//
// With no record in flight, the grant never left (the mark precedes it),
// and the command is run now. Should it have left after all, the
// gateway's journal answers a second grant of a command with the first's
// acknowledgement: nothing moves twice.

// approvalCtxKey is the context key of the approval a command runs for.
type approvalCtxKey struct{}

// withApproval marks ctx as running the approval ref's command, so that
// its record in flight names the approval. It travels in the context
// rather than through deliver's parameters: it is one fact about this
// run, read in one place (settler.mark), and the hot path's signatures
// stay as they are.
func withApproval(ctx context.Context, ref string) context.Context {
	return context.WithValue(ctx, approvalCtxKey{}, ref)
}

// approvalOf is the approval ctx runs a command for, or "".
func approvalOf(ctx context.Context) string {
	ref, _ := ctx.Value(approvalCtxKey{}).(string)
	return ref
}

// approvalRef names an approval in a record in flight.
func approvalRef(pa approval.Pending) string { return pa.Owner + "." + pa.ID }

// unlessSent is what an approved command's failed run came to: err, when
// no grant of it left for this approval (a refusal, decided afresh), or
// approval.ErrOutcomeUnknown when one did, so that what it came to is
// asked of the gateway rather than guessed.
func (sl *settler) unlessSent(ctx context.Context, hash common.Hash, ref string, err error) error {
	if errors.Is(err, ErrOutcomePending) {
		return fmt.Errorf("%w: %w", approval.ErrOutcomeUnknown, err)
	}
	e, gerr := sl.inflight.Get(ctx, inFlightKey(hash))
	if errors.Is(gerr, store.ErrNotFound) {
		return err
	}
	if gerr == nil {
		var m inFlight
		if json.Unmarshal(e.Value, &m) == nil && m.Approval != ref {
			return err
		}
	}
	return fmt.Errorf("%w: its grant was sent and no verified answer came back: %w", approval.ErrOutcomeUnknown, err)
}

// SettleApproved is the approval queue's settler of agents' commands: an
// approved command whose node stopped before storing its outcome, settled
// from its gateway's journal (see the top of this file).
func (s *Service) SettleApproved(ctx context.Context, pa approval.Pending) (json.RawMessage, error) {
	ac, err := decodeAgentCommand(pa.Payload)
	if err != nil {
		return nil, err
	}
	c, err := twin.NewCommand(ac.Twin, ac.Actuator, pa.Agent, ac.Key, ac.Request)
	if err != nil {
		return nil, err
	}
	answer, err := s.settle.fromJournal(ctx, c.Hash(), approvalRef(pa))
	switch {
	case err != nil:
		return nil, err
	case answer == nil:
		return s.RunApproved(ctx, pa) // never carried out: now
	}
	return json.Marshal(answer)
}

// fromJournal is what the command under hash, run for the approval ref,
// came to, from its record in flight and its gateway's journal: its
// answer completed with the gateway's acknowledgement (executed or
// refused); nil when it was never carried out and will not be (no record:
// its grant never left; not_executed: the record is taken, so that a run
// anew starts with none); or approval.ErrOutcomeUnknown.
func (sl *settler) fromJournal(ctx context.Context, hash common.Hash, ref string) (*Answer, error) {
	e, err := sl.inflight.Get(ctx, inFlightKey(hash))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read its record in flight: %w", approval.ErrOutcomeUnknown, err)
	}
	var m inFlight
	if err := json.Unmarshal(e.Value, &m); err != nil || m.Answer == nil || m.Approval != ref {
		return nil, fmt.Errorf("%w: its record in flight is unreadable or names another approval", approval.ErrOutcomeUnknown)
	}
	if !m.HandedBack && sl.clock.Now().Before(twin.FromMillis(m.Grant.Expiry).Add(resolveGrace)) {
		return nil, fmt.Errorf("%w: its grant is still live", approval.ErrOutcomeUnknown)
	}
	st, err := sl.disp.Status(ctx, &m.Grant)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", approval.ErrOutcomeUnknown, err)
	}
	switch st.Status.State {
	case twin.StateExecuted, twin.StateRefused:
		if st.Ack == nil || notDecidedYet(&st.Ack.Ack) {
			return nil, fmt.Errorf("%w: the gateway's journal holds no outcome yet", approval.ErrOutcomeUnknown)
		}
		answer := m.Answer
		sl.gateways.withAck(answer, *st.Ack)
		sl.take(ctx, e)
		sl.auditSettled(ctx, &m, string(st.Ack.Ack.Result), st.Ack.Ack.Result == twin.ResultDone)
		sl.events.Outcome(answer)
		sl.log.Info("an approved command its node lost track of was settled from its gateway's journal", "command", hash.Hex(), "approval", ref, "result", st.Ack.Ack.Result)
		return answer, nil
	case twin.StateNotExecuted:
		if !sl.take(ctx, e) {
			return nil, fmt.Errorf("%w: its record in flight changed", approval.ErrOutcomeUnknown)
		}
		sl.auditSettled(ctx, &m, resultUndelivered, false)
		sl.log.Info("an approved command its node lost track of was never carried out: it runs now", "command", hash.Hex(), "approval", ref)
		return nil, nil
	}
	return nil, fmt.Errorf("%w: the gateway answers %s", approval.ErrOutcomeUnknown, st.Status.State)
}
