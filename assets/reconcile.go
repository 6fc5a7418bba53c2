package assets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/store"
)

// A transfer is applied in one append and receipted in another, so a
// failure between the two (a lost answer, a full disk, a request cut off
// by its deadline, a crash) leaves an intent applied without a receipt:
// an orphan of the node that applied it, a stray to every other node.
// Within a node the chain asks once per intent at a time (chain.receipt)
// and never signs a receipt for an intent that has one, so the
// reconciler, a resubmitted intent and the original request may all ask
// at once.
//
// The reconciler runs on every node for as long as the ledger does: every
// ReconcileInterval it receipts the orphans it saw on its previous pass
// too (so a transfer still on its way to its receipt is left alone), at
// most maxReconcile per pass; at start, every orphan at once. It also
// adopts strays: an intent another node applied and has not receipted
// for AdoptAfter (that node is gone, or stopped before its receipt) is
// receipted here, on this node's chain, so that it does not wait for
// that node's restart.
//
// Exactly one node issues a late receipt. Every receipt issued after
// the request that applied the intent (by a reconciler, the node's own
// or another's, or for a resubmitted intent) first claims the intent:
// an append to its claim subject expecting it empty, which one node
// wins (claim). The request's own receipt claims nothing, to keep the
// hot path at two appends: it is signed within the request's deadline
// of the effect, and its block lands within the chain's append timeout
// (10 s) after that, far inside AdoptAfter (30 s). A node that dies
// between winning a claim and storing the receipt issues it when it
// restarts (its claim is its own).

// Defaults of Config.ReconcileInterval and Config.AdoptAfter.
const (
	defaultReconcileInterval = 2 * time.Second
	defaultAdoptAfter        = 30 * time.Second
	// maxReconcile bounds the receipts one pass asks for; the next pass
	// takes the rest.
	maxReconcile = 1024
	// reconcileWait bounds one pass's wait for its receipts.
	reconcileWait = 10 * time.Second
)

// orphan is an intent this node applied at seq without a receipt.
type orphan struct {
	intent common.Hash
	seq    uint64
}

// orphanList is the read model's orphans, oldest first.
func (l *Ledger) orphanList() []orphan {
	l.view.mu.RLock()
	list := make([]orphan, 0, len(l.view.orphans))
	for d, seq := range l.view.orphans {
		list = append(list, orphan{d, seq})
	}
	l.view.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	return list
}

// stray is an intent another node applied, without a receipt yet.
type stray struct {
	seq  uint64
	node string
	// seen is when this node's read model first saw it applied.
	seen time.Time
}

// claimRecord names the node that issues an intent's late receipt.
type claimRecord struct {
	Node string `json:"node"`
}

func claimSubject(intent common.Hash) string { return subjClaim + intent.Hex()[2:] }

// strayList is the strays to adopt now: applied by another node at least
// AdoptAfter ago, not claimed by a third, not being receipted here.
func (l *Ledger) strayList(now time.Time) []orphan {
	l.view.mu.RLock()
	var list []orphan
	for d, st := range l.view.strays {
		holder, claimed := l.view.claims[d]
		if claimed && holder != l.cfg.Node || !claimed && now.Sub(st.seen) < l.cfg.AdoptAfter {
			continue
		}
		list = append(list, orphan{d, st.seq})
	}
	l.view.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	return list
}

// claim takes the issuing of intent's late receipt for this node. It
// reports whether this node holds the claim, taken now or before; false
// means another node does, and issues the receipt.
func (l *Ledger) claim(ctx context.Context, intent common.Hash) (bool, error) {
	l.view.mu.RLock()
	holder, claimed := l.view.claims[intent]
	l.view.mu.RUnlock()
	if claimed {
		return holder == l.cfg.Node, nil
	}
	subject := claimSubject(intent)
	_, err := l.appendJSON(ctx, subject, claimRecord{Node: l.cfg.Node}, 0, store.WithMsgID("c"+l.cfg.Node+"-"+intent.Hex()[2:]))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, ErrConflict) {
		return false, err
	}
	if err := l.catchUpSubject(ctx, subject); err != nil {
		return false, err
	}
	l.view.mu.RLock()
	holder = l.view.claims[intent]
	l.view.mu.RUnlock()
	return holder == l.cfg.Node, nil
}

// reconcileLoop receipts orphans, and adopts strays, until ctx ends. It
// is paced in real time, as the strays' ages it judges are (AdoptAfter
// waits for another node, which keeps its own time).
func (l *Ledger) reconcileLoop(ctx context.Context) {
	seen := map[common.Hash]bool{} // orphans of the previous pass
	clock.Every(ctx, clock.Real{}, l.cfg.ReconcileInterval, func(ctx context.Context) {
		seen = l.reconcilePass(ctx, seen)
	})
}

// reconcilePass receipts the orphans seen in the previous pass too and the
// strays old enough to adopt; it returns the orphans of this pass.
func (l *Ledger) reconcilePass(ctx context.Context, seen map[common.Hash]bool) map[common.Hash]bool {
	list := l.orphanList()
	now := make(map[common.Hash]bool, len(list))
	var ripe []orphan
	for _, o := range list {
		now[o.intent] = true
		if seen[o.intent] && !l.chain.pending(o.intent) && len(ripe) < maxReconcile {
			ripe = append(ripe, o)
		}
	}
	own := len(ripe)
	for _, o := range l.strayList(time.Now()) {
		if len(ripe) == maxReconcile {
			break
		}
		if !l.chain.pending(o.intent) {
			ripe = append(ripe, o)
		}
	}
	ripe = l.claimAll(ctx, ripe)
	if n, err := l.receiptOrphans(ctx, ripe); n > 0 || err != nil {
		if err != nil && ctx.Err() == nil {
			l.log.Warn("receipts for applied intents: some still missing; next pass retries", "issued", n, "missing", len(ripe)-n, "err", err)
		} else if err == nil {
			l.log.Info("issued receipts for intents applied without one", "count", n, "adopted", max(0, n-own))
		}
	}
	return now
}

// claimAll claims each of list and returns those this node holds.
func (l *Ledger) claimAll(ctx context.Context, list []orphan) []orphan {
	if len(list) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, reconcileWait)
	defer cancel()
	held := list[:0]
	for _, o := range list {
		mine, err := l.claim(ctx, o.intent)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("claim the late receipt of an applied intent; next pass retries", "intent", o.intent.Hex(), "err", err)
			}
			continue
		}
		if mine {
			held = append(held, o)
		}
	}
	return held
}

// receiptOrphans asks the chain for the receipts of list, all at once so
// that they share blocks, and returns how many it got once this node's
// read model shows them.
func (l *Ledger) receiptOrphans(ctx context.Context, list []orphan) (int, error) {
	if len(list) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, reconcileWait)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  int
		errs []error
	)
	for _, o := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.receiptAndWait(ctx, o.intent, o.seq)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			got++
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return got, errs[0]
	}
	return got, nil
}

// Settle returns the receipt of an intent that was applied, so that
// resubmitting an intent answers with its receipt rather than with the
// spent nonce or the asset's new owner. If this node applied the intent
// and its receipt is missing (the answer failed after the effect), it is
// issued now, once, as the reconciler would. Settle waits until this
// node's read model shows the receipt. An intent that was not applied, or
// that another node applied and has not receipted yet, is ErrNotFound;
// one this node applied whose late receipt another node claimed (see
// claim) is ErrReceiptPending.
func (l *Ledger) Settle(ctx context.Context, intent common.Hash) (SignedReceipt, error) {
	if r, ok := l.receiptOf(intent); ok {
		return r, nil
	}
	l.view.mu.RLock()
	seq, applied := l.view.orphans[intent]
	l.view.mu.RUnlock()
	if !applied {
		return SignedReceipt{}, fmt.Errorf("%w: intent %s has no receipt here", ErrNotFound, intent.Hex())
	}
	mine, err := l.claim(ctx, intent)
	if err != nil {
		return SignedReceipt{}, err
	}
	if !mine {
		// Another node adopted it: its receipt is on its way.
		return SignedReceipt{}, fmt.Errorf("%w: intent %s, adopted by another node", ErrReceiptPending, intent.Hex())
	}
	r, err := l.receiptAndWait(ctx, intent, seq)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return SignedReceipt{}, err
	}
	return r, err
}
