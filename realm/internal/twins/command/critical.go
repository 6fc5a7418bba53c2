package command

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/twin"
)

// Settling a critical command carried out on a second operator's
// approval (approvals.go), when the node that ran it stopped before
// storing what came of it, or got an answer that does not tell. The
// approval's record (twin-approvals, by command hash) says in_progress
// from the approval on, with a lease: the longest grant lifetime, the
// grace after it and the request's time to decide. Its grant is recorded
// in flight bound to the record ("critical.<hash>"), as an agent's
// approved command's is (approved.go). Every node's reconciler (the one
// of resolve.go) looks at the in_progress records past their lease,
// takes one with a compare-and-set on its revision (so one node settles
// it), and settles it from the gateway's journal: executed or refused,
// the answer completed with the gateway's acknowledgement; never carried
// out, the command decided again for its requester, with the approver's
// approval, and carried out now; otherwise it stays in_progress and is
// asked about again shortly. command_in_progress is never stored as its
// answer.

// defaultCriticalLease is how long after the approval the approving node
// may be carrying the command out.
const defaultCriticalLease = twin.MaxGrantLifetime + resolveGrace + 3*time.Second

// criticalRetry is how soon a critical command whose outcome was not
// known is asked about again.
const criticalRetry = 3 * time.Second

// maxCriticalPerPass bounds the records one reconciler pass reads.
const maxCriticalPerPass = 256

// criticalSettle is how this node settles approved critical commands.
type criticalSettle struct {
	// lease overrides defaultCriticalLease; tests shorten it.
	lease time.Duration
	// stopAt is the stop point of a node that dies while it carries out
	// an approved critical command: before it (ran false) or after it,
	// before the outcome is stored. Only tests set it.
	stopAt func(c twin.Command, ran bool) bool
}

func (cs *criticalSettle) leaseFor() time.Duration {
	if cs.lease > 0 {
		return cs.lease
	}
	return defaultCriticalLease
}

func (cs *criticalSettle) stops(c twin.Command, ran bool) bool {
	return cs.stopAt != nil && cs.stopAt(c, ran)
}

// criticalRef names a critical command's approval in its record in
// flight.
func criticalRef(hash common.Hash) string { return "critical." + hex.EncodeToString(hash[:]) }

// runCritical carries out an approved critical command, its grant
// recorded in flight bound to its approval. unknown: its grant left and
// no answer told what it came to.
func (s *Service) runCritical(ctx context.Context, rec Approval, approver Operator) (answer *Answer, unknown bool, err error) {
	hash := rec.Command.Hash()
	ref := criticalRef(hash)
	answer, err = s.executeApproved(withApproval(ctx, ref), rec, approver)
	if err != nil {
		unknown = errors.Is(s.settle.unlessSent(ctx, hash, ref, err), approval.ErrOutcomeUnknown)
	}
	return answer, unknown, err
}

// storeCritical stores what an approved critical command, held at
// revision rev, came to; unknown keeps it in_progress with a short lease.
func (s *Service) storeCritical(ctx context.Context, rec Approval, rev uint64, answer *Answer, err error, unknown bool) (Approval, error) {
	if unknown {
		rec.Lease = s.deps.Clock.Now().UTC().Add(criticalRetry)
	} else {
		rec.Status = StatusRefused
		if err == nil {
			rec.Status, rec.Answer = answer.Status, answer
		}
	}
	data, merr := json.Marshal(rec)
	if merr != nil {
		return rec, merr
	}
	_, uerr := s.approvals.Update(ctx, approvalKey(rec.Command), data, rev)
	return rec, uerr
}

// settleCritical is one pass over the approved critical commands whose
// node's lease has passed; it returns how many it stored an outcome for.
func (s *Service) settleCritical(ctx context.Context) (int, error) {
	keys, err := s.approvals.Keys(ctx)
	if err != nil {
		return 0, err
	}
	settled := 0
	var errs []error
	for i, k := range keys {
		if i == maxCriticalPerPass || ctx.Err() != nil {
			break
		}
		rec, rev, err := s.LoadApproval(ctx, k)
		now := s.deps.Clock.Now().UTC()
		if err != nil || rec.Status != StatusInProgress || rec.Lease.IsZero() || now.Before(rec.Lease) {
			continue // a record from before leases expires with the bucket
		}
		rec.Lease = now.Add(s.crit.leaseFor())
		data, err := json.Marshal(rec)
		if err != nil {
			continue
		}
		if rev, err = s.approvals.Update(ctx, k, data, rev); err != nil {
			if !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
			}
			continue // another node took it, or its node finished
		}
		answer, unknown, err := s.settleCriticalOne(ctx, rec)
		stored, serr := s.storeCritical(ctx, rec, rev, answer, err, unknown)
		switch {
		case serr != nil:
			errs = append(errs, serr)
		case !unknown:
			settled++
			s.log.Info("an approved critical command its node lost track of was settled", "command", rec.Command.Hash().Hex(), "status", stored.Status, "err", err)
		}
	}
	return settled, errors.Join(errs...)
}

// settleCriticalOne is what an approved critical command whose node
// stopped came to: from its gateway's journal, or carried out now.
func (s *Service) settleCriticalOne(ctx context.Context, rec Approval) (*Answer, bool, error) {
	hash := rec.Command.Hash()
	answer, err := s.settle.fromJournal(ctx, hash, criticalRef(hash))
	switch {
	case err != nil:
		return nil, true, err
	case answer != nil:
		return answer, false, nil
	}
	// Never carried out: decided again for its requester, with the
	// approver's approval, as the approving node would have.
	return s.runCritical(ctx, rec, Operator{Avatar: &avatar.Avatar{ID: rec.Approver}})
}
