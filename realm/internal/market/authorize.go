package market

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/zerorealm/zerorealm/internal/store"

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

// claimKey takes p's Idempotency-Key, if the request has one, for the
// intent's digest. It reports whether the key named this intent before (a
// retry) and, when this request took the key, a function that frees it if
// the request is refused, so that the client may use it again.
func (s *Service) claimKey(ctx context.Context, p edge.Principal, key string, digest common.Hash) (retry bool, release func(), err error) {
	if key == "" {
		return false, func() {}, nil
	}
	// An agent's keys are its own: its owner's requests may use the same.
	who := p.Avatar.ID
	if p.IsAgent() {
		who = p.Agent.ID
	}
	prev, err := s.idempotency.Claim(ctx, who, key, digest[:])
	if err != nil {
		return false, nil, err
	}
	if prev != nil {
		return true, func() {}, nil
	}
	return false, func() {
		cctx, cancel := store.Cleanup(ctx)
		defer cancel()
		if err := s.idempotency.Release(cctx, who, key); err != nil {
			s.log.Warn("free the Idempotency-Key of a refused transfer", "err", err)
		}
	}, nil
}

// ifApplied is the answer to an intent that was applied already: its
// receipt, replayed, and done. If this node applied it and the first
// answer failed before the receipt was issued, the receipt is issued now
// (assets.Ledger.Settle); a failure to do so is the answer too (the
// effect happened; the client retries). An intent not applied is not
// done.
func (s *Service) ifApplied(ctx context.Context, digest common.Hash) (out applied, done bool, err error) {
	rc, err := s.ledger.Settle(ctx, digest)
	switch {
	case errors.Is(err, assets.ErrNotFound):
		return applied{}, false, nil
	case err != nil:
		return applied{}, true, err
	}
	return applied{digest: digest, receipt: rc, replayed: true}, true, nil
}

// afterRefusal is the answer to a transfer or trade (legs) the ledger
// refused because its asset or nonce moved on (not-owner, nonce-used, or
// a conflict it could not settle by reading again): if the intent itself moved
// it (a retry racing the first request, or a first answer that was
// lost), its receipt, or assets.ErrReceiptPending while the receipt is
// not issued yet; if the key names a first request still without a
// receipt, idempotency.ErrInProgress (409, retry); otherwise the refusal.
// Whether the intent moved it is read from the ledger's leader
// (assets.Ledger.Resolve): a refusal is final for the client, which then
// signs a new intent, so it is never answered for an intent this node's
// read model has not caught up with yet.
func (s *Service) afterRefusal(ctx context.Context, digest common.Hash, retry bool, err error, legs ...*assets.Transfer) (applied, error) {
	var re *assets.RejectError
	moved := errors.As(err, &re) && (re.Reason == assets.ReasonNotOwner || re.Reason == assets.ReasonNonceUsed)
	if moved || errors.Is(err, assets.ErrConflict) {
		rc, rerr := s.ledger.Resolve(ctx, digest, legs...)
		switch {
		case rerr == nil:
			return applied{digest: digest, receipt: rc, replayed: true}, nil
		case !errors.Is(rerr, assets.ErrNotFound):
			return applied{}, rerr
		case retry:
			err = idempotency.ErrInProgress
		}
	}
	return applied{}, err
}
