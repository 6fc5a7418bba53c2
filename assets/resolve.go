package assets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/store"
)

// ErrReceiptPending reports an intent that was applied (its nonce is
// spent by it, its asset or balances moved by it) whose receipt is not
// issued yet: its first answer was lost, and the node that applied it
// has not receipted it. The effect happened; asking again returns the
// receipt once it is issued (see Ledger.Resolve).
var ErrReceiptPending = errors.New("assets: the intent was applied; its receipt is not issued yet")

// Resolve is the answer to an intent whose transfer or trade (legs, one
// or two) was refused because a leg's nonce or asset moved on: the
// receipt when the intent moved them itself, or the refusal's cause
// when it did not.
//
// A node's read model may not show yet what another node applied a
// moment ago, and Settle knows only receipts and this node's own
// orphans, so a refusal judged from them alone could tell a client that
// its applied intent was refused; the client would sign another intent
// and move the asset twice. Resolve reads each leg's nonce from the
// stream's leader instead: an intent that spent its nonce and, for a
// unique transfer (whose nonce is spent before the asset is written),
// moved its asset was applied. Then its receipt is returned if it has
// one (issued now if this node applied it); ErrReceiptPending if not.
// ErrNotFound says the intent was not applied; any other error that it
// cannot tell now.
func (l *Ledger) Resolve(ctx context.Context, intent common.Hash, legs ...*Transfer) (SignedReceipt, error) {
	if r, err := l.Settle(ctx, intent); !errors.Is(err, ErrNotFound) {
		return r, err
	}
	applied, err := l.appliedIntent(ctx, intent, legs)
	if err != nil || !applied {
		if err == nil {
			err = fmt.Errorf("%w: intent %s was not applied", ErrNotFound, intent.Hex())
		}
		return SignedReceipt{}, err
	}
	r, err := l.Settle(ctx, intent)
	if errors.Is(err, ErrNotFound) {
		return SignedReceipt{}, fmt.Errorf("%w: intent %s", ErrReceiptPending, intent.Hex())
	}
	return r, err
}

// appliedIntent reports, from the leader, whether intent spent the first
// of legs' nonces and took effect, and brings this node's read model up
// to what it read.
func (l *Ledger) appliedIntent(ctx context.Context, intent common.Hash, legs []*Transfer) (bool, error) {
	if len(legs) == 0 {
		return false, nil
	}
	t := legs[0]
	m, err := l.stream.GetLast(ctx, nonceSubject(t.From, t.Nonce), store.FromLeader())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var rec nonceRecord
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		return false, fmt.Errorf("assets: nonce record of %s: %w", t.From.Hex(), err)
	}
	if rec.Released || rec.Digest != intent {
		return false, nil
	}
	if err := l.follower.WaitApplied(ctx, m.Seq); err != nil {
		return false, err
	}
	c, ok := l.colls[t.Collection]
	if len(legs) > 1 || !ok || c.Kind == Fungible {
		// Trades and credits transfers write their nonces with their
		// effect in one atomic batch: a spent nonce is an applied intent.
		return true, nil
	}
	// A unique transfer spends its nonce, then writes its asset: both, or
	// a crash between them.
	if err := l.catchUpSubject(ctx, assetSubject(t.Collection, t.AssetID)); err != nil {
		return false, err
	}
	a, err := l.Asset(t.Collection, t.AssetID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(a.History, func(e Event) bool { return e.Digest == intent }), nil
}
