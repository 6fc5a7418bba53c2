package market

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// SettleApproved is the approval queue's settler of transfers: an
// agent's transfer its owner approved, whose node stopped before storing
// what came of it. The ledger knows: an intent applied (by its digest)
// is answered with its receipt, the answer the runner would have stored,
// whatever became of the agent since; one not applied is run now,
// decided afresh as the runner would (RunApproved), and refused with its
// reason if the agent may no longer make it. A ledger that cannot tell
// now (its receipt not issued yet, the store away) leaves the outcome
// unknown, to be asked again.
func (s *Service) SettleApproved(ctx context.Context, pa approval.Pending) (json.RawMessage, error) {
	in, err := assets.DecodeTransferRequest(pa.Payload)
	if err != nil {
		return nil, err
	}
	prepared, _, err := s.prepareTransfer(in)
	if err != nil {
		return nil, err
	}
	digest := prepared.Digest()
	out, done, err := s.ifApplied(ctx, digest)
	switch {
	case done && err != nil:
		return nil, fmt.Errorf("%w: the ledger could not tell whether intent %s was applied: %w", approval.ErrOutcomeUnknown, digest.Hex(), err)
	case done:
		return s.appendTransferAnswer(nil, out.digest, &out.receipt), nil
	}
	return s.RunApproved(ctx, pa)
}

// outcomeUnknownIfUnavailable is err, or approval.ErrOutcomeUnknown for
// a run that found the store or the audit log away (503): nothing moved,
// and an approved transfer is asked again rather than failed for an
// outage. The intent's own deadline bounds how long.
func outcomeUnknownIfUnavailable(err error) error {
	if err != nil && edge.ProblemOf(err).Status == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: %w", approval.ErrOutcomeUnknown, err)
	}
	return err
}
