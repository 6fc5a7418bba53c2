package assets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/store"
)

// chain writes this node's receipt chain. Each node has its own chain, so
// nodes never wait for one another (no global lock, no leader); within a
// node one goroutine appends, so the chain needs no lock either. Receipts
// that arrive while a block is being appended go into the next block: one
// compare-and-set append carries up to ReceiptBatch receipts, which is what
// lets the chain keep up with thousands of transfers a second. The
// compare-and-set on the chain's subject still catches a second process
// started with the same node name.
type chain struct {
	l       *Ledger
	subject string
	reqs    chan *receiptReq
	kick    chan struct{} // asks for a checkpoint

	// Owned by run.
	next uint64      // index of the next receipt
	prev common.Hash // digest of the last receipt
	last uint64      // stream sequence of the last block
}

type receiptReq struct {
	intent common.Hash
	seq    uint64
	done   chan receiptResult
}

type receiptResult struct {
	r        SignedReceipt
	blockSeq uint64
	err      error
}

func newChain(l *Ledger) *chain {
	return &chain{l: l, subject: subjReceipts + l.cfg.Node, reqs: make(chan *receiptReq, 4096), kick: make(chan struct{}, 1)}
}

// resume continues the chain where the read model, complete at start-up,
// says it ends.
func (c *chain) resume(ctx context.Context) error {
	if err := c.l.catchUpSubject(ctx, c.subject); err != nil {
		return err
	}
	c.l.view.mu.RLock()
	defer c.l.view.mu.RUnlock()
	if cv := c.l.view.chains[c.l.cfg.Node]; cv != nil && len(cv.receipts) > 0 {
		c.next = uint64(len(cv.receipts))
		c.prev = cv.receipts[len(cv.receipts)-1].Digest
		c.last = cv.lastSeq
	}
	return nil
}

// receipt asks the chain for the receipt of an intent applied at seq.
// It returns the receipt and the stream sequence of the block holding it.
func (c *chain) receipt(ctx context.Context, intent common.Hash, seq uint64) (SignedReceipt, uint64, error) {
	req := &receiptReq{intent: intent, seq: seq, done: make(chan receiptResult, 1)}
	select {
	case c.reqs <- req:
	case <-ctx.Done():
		return SignedReceipt{}, 0, fmt.Errorf("assets: intent %s applied at %d, receipt pending: %w", intent.Hex(), seq, ctx.Err())
	}
	select {
	case res := <-req.done:
		return res.r, res.blockSeq, res.err
	case <-ctx.Done():
		return SignedReceipt{}, 0, fmt.Errorf("assets: intent %s applied at %d, receipt pending: %w", intent.Hex(), seq, ctx.Err())
	}
}

func (c *chain) run(ctx context.Context) {
	batch := make([]*receiptReq, 0, c.l.cfg.ReceiptBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-c.reqs:
			batch = append(batch, r)
		}
	drain:
		for len(batch) < c.l.cfg.ReceiptBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		out, err := c.write(ctx, batch)
		for i, r := range batch {
			if err != nil {
				r.done <- receiptResult{err: err}
			} else {
				r.done <- receiptResult{r: out[i], blockSeq: c.last}
			}
		}
	}
}

// write signs and appends one block; on a conflict (another writer of the
// same chain) it reloads the chain's end and tries once more.
func (c *chain) write(ctx context.Context, batch []*receiptReq) ([]SignedReceipt, error) {
	for attempt := 0; attempt < 2; attempt++ {
		out, blk := c.sign(batch)
		data, err := json.Marshal(blk)
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		seq, err := c.l.stream.AppendIfLast(wctx, c.subject, data, c.last, store.WithMsgID(fmt.Sprintf("r-%s-%d", c.l.cfg.Node, c.next)))
		if errors.Is(err, store.ErrConflict) && attempt == 0 {
			c.l.log.Warn("receipt chain moved under this node: is another process running with the same node name?", "chain", c.l.cfg.Node)
			err = c.resume(wctx)
			cancel()
			if err != nil {
				return nil, err
			}
			continue
		}
		cancel()
		if err != nil {
			return nil, fmt.Errorf("assets: append receipts: %w", err)
		}
		c.next += uint64(len(out))
		c.prev = out[len(out)-1].Digest
		c.last = seq
		if c.next%uint64(c.l.cfg.CheckpointEvery) < uint64(len(out)) {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: receipt chain %s", ErrConflict, c.l.cfg.Node)
}

// sign builds the batch's receipts in chain order (each links to the
// digest of the one before, which needs no signature) and then signs them
// on every core.
func (c *chain) sign(batch []*receiptReq) ([]SignedReceipt, receiptBlock) {
	now := uint64(c.l.cfg.Now().Unix())
	out := make([]SignedReceipt, len(batch))
	prev := c.prev
	for i, r := range batch {
		rc := Receipt{Intent: r.intent, Sequence: r.seq, Chain: c.l.cfg.Node, Index: c.next + uint64(i), Previous: prev, Time: now}
		d := c.l.scheme.ReceiptDigest(&rc)
		out[i] = SignedReceipt{Receipt: rc, Digest: d, Signer: c.l.signer}
		prev = d
	}
	workers := min(runtime.GOMAXPROCS(0), (len(out)+7)/8)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(out); i += workers {
				// Signing with a valid key over a 32-byte digest cannot fail.
				out[i].Signature, _ = Sign(out[i].Digest, c.l.cfg.Signer)
			}
		}()
	}
	wg.Wait()
	blk := receiptBlock{Signer: c.l.signer, Receipts: make([]receiptEntry, len(out))}
	for i, r := range out {
		blk.Receipts[i] = receiptEntry{Intent: r.Receipt.Intent, Sequence: r.Receipt.Sequence, Index: r.Receipt.Index,
			Previous: r.Receipt.Previous, Time: r.Receipt.Time, Signature: r.Signature}
	}
	return out, blk
}

// receiptOrphans issues the receipts a crash left out: intents this node
// applied to the ledger whose receipt was never appended.
func (l *Ledger) receiptOrphans(ctx context.Context) {
	l.view.mu.RLock()
	type orphan struct {
		d   common.Hash
		seq uint64
	}
	var list []orphan
	for d, seq := range l.view.orphans {
		list = append(list, orphan{d, seq})
	}
	l.view.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	for _, o := range list {
		if _, _, err := l.chain.receipt(ctx, o.d, o.seq); err != nil {
			l.log.Error("receipt for an intent applied before a crash", "intent", o.d.Hex(), "seq", o.seq, "err", err)
			return
		}
	}
	if len(list) > 0 {
		l.log.Info("issued receipts for intents applied before a restart", "count", len(list))
	}
}

// maxCheckpointSize bounds the tree of one checkpoint, and so the work of
// serving a proof.
const maxCheckpointSize = 4096

func (l *Ledger) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.chain.kick:
		}
		for {
			n, err := l.Checkpoint(ctx)
			if err != nil {
				if ctx.Err() == nil {
					l.log.Warn("checkpoint", "err", err)
				}
				break
			}
			if n < maxCheckpointSize {
				break
			}
		}
	}
}

// Checkpoint signs a checkpoint over this node's receipts not yet covered,
// and returns how many it covers (0: nothing pending).
func (l *Ledger) Checkpoint(ctx context.Context) (int, error) {
	// The model must include the chain's latest blocks.
	if err := l.catchUpSubject(ctx, l.chain.subject); err != nil {
		return 0, err
	}
	if err := l.catchUpSubject(ctx, subjCheckpoint+l.cfg.Node); err != nil {
		return 0, err
	}
	l.view.mu.RLock()
	cv := l.view.chains[l.cfg.Node]
	if cv == nil {
		l.view.mu.RUnlock()
		return 0, nil
	}
	var first uint64
	var prev common.Hash
	if n := len(cv.checkpoints); n > 0 {
		last := cv.checkpoints[n-1]
		first, prev = last.Checkpoint.First+last.Checkpoint.Count, last.Digest
	}
	end := min(uint64(len(cv.receipts)), first+maxCheckpointSize)
	if end <= first {
		l.view.mu.RUnlock()
		return 0, nil
	}
	leaves := make([]common.Hash, 0, end-first)
	for _, r := range cv.receipts[first:end] {
		leaves = append(leaves, r.Digest)
	}
	lastSeq := cv.lastCkptSeq
	l.view.mu.RUnlock()

	cp := Checkpoint{Chain: l.cfg.Node, First: first, Count: uint64(len(leaves)), Root: MerkleRoot(leaves), Previous: prev, Time: uint64(l.cfg.Now().Unix())}
	sig, err := Sign(l.scheme.CheckpointDigest(&cp), l.cfg.Signer)
	if err != nil {
		return 0, err
	}
	rec := checkpointRecord{First: cp.First, Count: cp.Count, Root: cp.Root, Previous: cp.Previous, Time: cp.Time, Signature: sig, Signer: l.signer}
	seq, err := l.appendJSON(ctx, subjCheckpoint+l.cfg.Node, rec, lastSeq)
	if err != nil {
		return 0, err
	}
	return len(leaves), l.follower.WaitApplied(ctx, seq)
}

// VerifyReceipt checks a receipt's signature under scheme and returns the
// address that signed it. Whether that address is a realm's signer is for
// the caller to know (zerorealm keys export-public).
func VerifyReceipt(scheme *Scheme, r *Receipt, sig Signature) (common.Address, common.Hash, error) {
	d := scheme.ReceiptDigest(r)
	signer, err := Recover(d, sig)
	return signer, d, err
}

// VerifyCheckpoint is VerifyReceipt for checkpoints.
func VerifyCheckpoint(scheme *Scheme, c *Checkpoint, sig Signature) (common.Address, common.Hash, error) {
	d := scheme.CheckpointDigest(c)
	signer, err := Recover(d, sig)
	return signer, d, err
}

// VerifyChain checks that receipts, in index order, link each to the one
// before, with no index missing, and that each is signed by a signer the
// caller trusts. It returns the index of the first bad receipt, or -1.
func VerifyChain(receipts []SignedReceipt, trusted func(common.Address) bool) (int, error) {
	for i, r := range receipts {
		if i > 0 {
			p := receipts[i-1]
			if r.Receipt.Index != p.Receipt.Index+1 {
				return i, fmt.Errorf("receipt %d follows %d: a link is missing", r.Receipt.Index, p.Receipt.Index)
			}
			if r.Receipt.Previous != p.Digest {
				return i, fmt.Errorf("receipt %d links to %s, the receipt before is %s", r.Receipt.Index, r.Receipt.Previous.Hex(), p.Digest.Hex())
			}
		}
		signer, err := Recover(r.Digest, r.Signature)
		if err != nil {
			return i, err
		}
		if !trusted(signer) {
			return i, fmt.Errorf("receipt %d is signed by %s, not a trusted realm key", r.Receipt.Index, signer.Hex())
		}
	}
	return -1, nil
}
