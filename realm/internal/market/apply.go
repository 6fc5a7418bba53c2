package market

import (
	"context"
	"errors"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// applied is what a transfer or trade came to: the receipt of its intent,
// countersigned now or, for an intent applied already (replayed), before.
type applied struct {
	digest   common.Hash
	receipt  assets.SignedReceipt
	replayed bool
}

// applyTransfer carries out a transfer intent for p: the intent must be
// for this realm's domain and a collection it holds; an intent applied
// already gets its receipt again, whatever its Idempotency-Key; the
// owner's signature is the one
// given or, for p's custodial address, the custodial key's after p's
// step-up; and the scene's policy decides, on record, before the ledger
// moves anything.
func (s *Service) applyTransfer(ctx context.Context, p edge.Principal, in assets.TransferIntent, idempotencyKey string) (applied, error) {
	prepared, _, err := s.prepareTransfer(in)
	if err != nil {
		return applied{}, err
	}
	t := in.Transfer
	digest := prepared.Digest()
	retry, release, err := s.claimKey(ctx, p, idempotencyKey, digest)
	if err != nil {
		return applied{}, err
	}
	if out, done, err := s.ifApplied(ctx, digest); done {
		return out, err
	}
	given := ""
	if in.Signature != nil {
		given = in.Signature.String()
	}
	sig, err := s.ownerSignature(ctx, p, t.From, given, digest)
	if err != nil {
		release()
		return applied{}, err
	}
	rc, err := s.ledger.TransferPrepared(ctx, prepared, sig, s.authorizeTransfer(p, []*assets.Transfer{&t}))
	if err != nil {
		release()
		return s.afterRefusal(ctx, digest, retry, err, &t)
	}
	return applied{digest: digest, receipt: rc}, nil
}

// applyTrade carries out both legs of a trade for p, or neither. p must
// own at least one leg; the other is the counterparty's, and must come
// signed. Otherwise it goes as applyTransfer does, with one idempotency
// key and one receipt for the trade.
func (s *Service) applyTrade(ctx context.Context, p edge.Principal, in assets.TradeIntent, idempotencyKey string) (applied, error) {
	if err := s.ledger.CheckDomain(in.Domain); err != nil {
		return applied{}, err
	}
	tr := in.Trade
	digest := s.scheme.TradeDigest(&tr)
	retry, release, err := s.claimKey(ctx, p, idempotencyKey, digest)
	if err != nil {
		return applied{}, err
	}
	if out, done, err := s.ifApplied(ctx, digest); done {
		return out, err
	}
	sigFor := func(leg *assets.Transfer, given *assets.Signature) (assets.Signature, error) {
		g := ""
		if given != nil {
			g = given.String()
		}
		sig, err := s.ownerSignature(ctx, p, leg.From, g, digest)
		var re *assets.RejectError
		if errors.As(err, &re) && re.Reason == assets.ReasonNotYours && given != nil {
			return *given, nil
		}
		return sig, err
	}
	wallets, custodial := s.ledger.Addresses(p.Avatar.ID)
	own := func(a common.Address) bool { return a == custodial || slices.Contains(wallets, a) }
	if !own(tr.Give.From) && !own(tr.Take.From) {
		release()
		return applied{}, &assets.RejectError{Reason: assets.ReasonNotYours, Detail: "neither leg of the trade comes from this avatar's addresses"}
	}
	gs, err := sigFor(&tr.Give, in.GiveSignature)
	if err != nil {
		release()
		return applied{}, err
	}
	ts, err := sigFor(&tr.Take, in.TakeSignature)
	if err != nil {
		release()
		return applied{}, err
	}
	rc, err := s.ledger.Trade(ctx, tr, gs, ts, s.authorizeTransfer(p, []*assets.Transfer{&tr.Give, &tr.Take}))
	if err != nil {
		release()
		return s.afterRefusal(ctx, digest, retry, err, &tr.Give, &tr.Take)
	}
	return applied{digest: digest, receipt: rc}, nil
}
