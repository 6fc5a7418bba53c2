package assets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// A transfer is applied in one append and receipted in another, so a
// failure between the two (a lost answer, a full disk, a request cut off
// by its deadline, a crash) leaves an intent applied without a receipt:
// an orphan. The node that applied it is the only one that receipts it,
// on its own chain, so nodes never race one another for an orphan; within
// the node the chain asks once per intent at a time (chain.receipt) and
// never signs a receipt for an intent that has one, so the reconciler, a
// resubmitted intent and the original request may all ask at once.
//
// The reconciler runs on every node for as long as the ledger does: every
// ReconcileInterval it receipts the orphans it saw on its previous pass
// too (so a transfer still on its way to its receipt is left alone), at
// most maxReconcile per pass. At start it receipts every orphan at once.

// Defaults of Config.ReconcileInterval.
const (
	defaultReconcileInterval = 2 * time.Second
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

// reconcileLoop receipts orphans until ctx ends.
func (l *Ledger) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.ReconcileInterval)
	defer t.Stop()
	seen := map[common.Hash]bool{} // orphans of the previous pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list := l.orphanList()
		now := make(map[common.Hash]bool, len(list))
		var ripe []orphan
		for _, o := range list {
			now[o.intent] = true
			if seen[o.intent] && !l.chain.pending(o.intent) && len(ripe) < maxReconcile {
				ripe = append(ripe, o)
			}
		}
		seen = now
		if n, err := l.receiptOrphans(ctx, ripe); n > 0 || err != nil {
			if err != nil && ctx.Err() == nil {
				l.log.Warn("receipts for applied intents: some still missing; next pass retries", "issued", n, "missing", len(ripe)-n, "err", err)
			} else if err == nil {
				l.log.Info("issued receipts for intents applied without one", "count", n)
			}
		}
	}
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
// that another node applied and has not receipted yet, is ErrNotFound.
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
	r, err := l.receiptAndWait(ctx, intent, seq)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return SignedReceipt{}, err
	}
	return r, err
}
