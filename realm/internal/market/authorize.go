package market

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/scenes"
)

// ownerSignature is the signature that authorizes digest for owner: the
// one given, or, for the caller's own custodial address, the custodial
// key's, once the caller's step-up for exactly this digest is spent. An
// owner that is neither the caller's wallet nor its custodial address is
// refused: the realm acts only for the signed-in avatar's own addresses.
func (s *Service) ownerSignature(ctx context.Context, p edge.Principal, owner common.Address, given string, digest common.Hash) (assets.Signature, error) {
	wallets, custodial := s.ledger.Addresses(p.Avatar.ID)
	mine := owner == custodial && custodial != (common.Address{}) || slices.Contains(wallets, owner)
	if !mine {
		return assets.Signature{}, &assets.RejectError{Reason: assets.ReasonNotYours,
			Detail: fmt.Sprintf("%s is neither a wallet linked to this avatar nor its custodial address", owner.Hex())}
	}
	if given != "" {
		return assets.ParseSignature(given)
	}
	if owner != custodial {
		return assets.Signature{}, edge.BadRequest("signature is required: " + owner.Hex() + " is a linked wallet, which signs for itself")
	}
	if err := s.stepUps.Consume(ctx, p.Session.ID, digest[:]); err != nil {
		return assets.Signature{}, err
	}
	return s.ledger.SignCustodial(p.Avatar.ID, digest)
}

// authorizeTransfer is the scene policy check of every leg: TransferAsset
// on the asset, with the amount, whether it is high value, the velocity of
// a fungible leg's holder, and the session's trust. Each leg's decision is
// stored in the audit log before the ledger acts on it: a transfer the
// audit log cannot record does not happen. The ledger calls it again when
// another transfer of the same holder landed first, so the audit log then
// holds both decisions.
func (s *Service) authorizeTransfer(p edge.Principal, legs []*assets.Transfer) func(context.Context, assets.Check) error {
	return func(ctx context.Context, chk assets.Check) error {
		a := s.trust.Assess(ctx, p.Session)
		for i, c := range chk.Legs {
			sc := s.scenes[c.ID]
			coll, ok := sc.Collection(c.ID)
			if !ok {
				return fmt.Errorf("collection %s missing from scene %s", c.ID, sc.ID)
			}
			t := legs[i]
			entity := coll.AssetEntity(t.AssetID)
			extra := map[string]any{
				scenes.ContextAmount:    int64(t.Amount),
				scenes.ContextHighValue: c.Kind == assets.Fungible && t.Amount >= s.highValue,
			}
			if i < len(chk.Velocity) && chk.Velocity[i] != nil {
				extra[scenes.ContextVelocity] = velocityContext(chk.Velocity[i])
			}
			d, err := s.decider.DecideAndWait(ctx, sc, p, a, scenes.ActionTransferAsset, entity.UID, extra, entity)
			if err != nil {
				return &edge.Error{Status: http.StatusServiceUnavailable, Detail: "the transfer's authorization could not be stored in the audit log, so nothing moved; retry later", Err: err, NothingChanged: true}
			}
			if !d.Allow {
				return &edge.Error{Status: http.StatusForbidden, Detail: fmt.Sprintf("the scene's policy refuses this transfer of %s: %s", entity.UID, d.Reason)}
			}
		}
		return nil
	}
}

// velocityContext is a holder's velocity as the policies read it. The
// ledger caps the sums at assets.MaxAmount, which a Cedar Long holds.
func velocityContext(v *assets.Velocity) map[string]any {
	return map[string]any{
		scenes.VelocitySum1h:    int64(v.Sum1h),
		scenes.VelocitySum24h:   int64(v.Sum24h),
		scenes.VelocityCount1h:  int64(min(v.Count1h, assets.MaxAmount)),
		scenes.VelocityCount24h: int64(min(v.Count24h, assets.MaxAmount)),
	}
}

// replay returns the earlier answer to a request with the same
// Idempotency-Key and intent, and refuses the key's reuse for another
// intent. Without a key every request is new, so a replayed intent meets
// its spent nonce. A nil answer and error: the request is new.
func (s *Service) replay(ctx context.Context, p edge.Principal, key string, digest common.Hash) (*transferAnswer, error) {
	first, err := s.idempotency.Claim(ctx, p.Avatar.ID, key, digest[:])
	switch {
	case errors.Is(err, idempotency.ErrKeyTooLong):
		return nil, edge.BadRequest(fmt.Sprintf("Idempotency-Key is longer than %d characters", idempotency.MaxKeyLength))
	case errors.Is(err, idempotency.ErrKeyReused):
		return nil, &edge.Error{Status: http.StatusUnprocessableEntity, Detail: "this Idempotency-Key was used for another intent"}
	case err != nil:
		return nil, err
	case first:
		return nil, nil
	}
	rc, err := s.ledger.ReceiptFor(digest)
	if err != nil {
		return nil, &edge.Error{Status: http.StatusConflict, Detail: "a request with this Idempotency-Key is still in progress or failed; retry later or use a new key"}
	}
	return &transferAnswer{Digest: digest.Hex(), Sequence: rc.Receipt.Sequence, Receipt: s.scheme.ReceiptDocument(rc)}, nil
}
