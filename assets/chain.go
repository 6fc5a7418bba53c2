package assets

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/store"
)

// chain writes this node's receipt chain. Each node has its own chain, so
// nodes never wait for one another (no global lock, no leader); within a
// node one goroutine owns the chain, so it needs no lock either. Receipts
// that arrive while a block is being appended go into the next block: one
// compare-and-set append carries up to ReceiptBatch receipts, which is what
// lets the chain keep up with thousands of transfers a second. The
// compare-and-set on the chain's subject still catches a second process
// started with the same node name.
//
// Signing is pipelined with storing: while one block's append is in
// flight, the next block is built and signed after it (a receipt links to
// the digest of the one before, which needs no signature and no ledger
// sequence). The next block is appended only once the one before is
// stored, with that block's sequence as its expectation, so the stream
// never holds a block whose predecessor is missing; if the append fails,
// the block signed after it is signed again after the chain's real end.
// Without the overlap every transfer waiting for a receipt also waited for
// the signatures of the batch ahead of it, and the cores idled through
// each round trip.
type chain struct {
	l       *Ledger
	subject string
	reqs    chan *receiptReq
	kick    chan struct{} // asks for a checkpoint

	// Owned by run.
	next uint64      // index of the next receipt to sign
	prev common.Hash // digest of the last receipt signed
	last uint64      // stream sequence of the last block stored

	// asking holds the request of every intent whose receipt was asked
	// for and not yet seen in the read model (see finish and forget): a
	// second caller (a resubmitted intent, the reconciler) waits for the
	// same answer instead of asking again, so no intent gets two
	// receipts. Lock order: chain.mu only.
	mu     sync.Mutex
	asking map[common.Hash]*receiptReq
}

type receiptReq struct {
	intent common.Hash
	seq    uint64
	// finished is closed when res is set.
	finished chan struct{}
	res      receiptResult
}

type receiptResult struct {
	r        SignedReceipt
	blockSeq uint64
	err      error
}

// chainBlock is one block on its way to the stream: the requests it
// answers, their receipts, its encoding, and the chain's end before it
// (where the chain goes back to if the block is not stored).
type chainBlock struct {
	batch    []*receiptReq
	out      []SignedReceipt
	data     []byte
	baseNext uint64
	basePrev common.Hash
	stored   chan appendResult // the append's outcome, once launched
}

type appendResult struct {
	seq uint64
	err error
}

// msgID names the block for the stream's deduplication: the store retries
// a lost acknowledgement under it. It names the block's content, not only
// its place: a second process under the same node name signing another
// block for the same index must meet the compare-and-set, not be taken
// for a retry and told that its block was stored when the other's was.
func (b *chainBlock) msgID(node string) string {
	h := crypto.Keccak256(b.data)
	return fmt.Sprintf("r-%s-%d-%x", node, b.baseNext, h[:12])
}

func newChain(l *Ledger) *chain {
	return &chain{l: l, subject: subjReceipts + l.cfg.Node, reqs: make(chan *receiptReq, 4096), kick: make(chan struct{}, 1),
		asking: map[common.Hash]*receiptReq{}}
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

// receipt asks the chain for the receipt of an intent applied at seq, or
// joins the request already made for it. It returns the receipt and the
// stream sequence of the block holding it. An intent that has a receipt
// already gets that one (see done).
func (c *chain) receipt(ctx context.Context, intent common.Hash, seq uint64) (SignedReceipt, uint64, error) {
	c.mu.Lock()
	req, joined := c.asking[intent]
	if !joined {
		req = &receiptReq{intent: intent, seq: seq, finished: make(chan struct{})}
		c.asking[intent] = req
	}
	c.mu.Unlock()
	if !joined {
		select {
		case c.reqs <- req:
		case <-ctx.Done():
			err := fmt.Errorf("assets: intent %s applied at %d, receipt pending: %w", intent.Hex(), seq, ctx.Err())
			c.finish(req, receiptResult{err: err})
			return SignedReceipt{}, 0, err
		}
	}
	select {
	case <-req.finished:
		return req.res.r, req.res.blockSeq, req.res.err
	case <-ctx.Done():
		return SignedReceipt{}, 0, fmt.Errorf("assets: intent %s applied at %d, receipt pending: %w", intent.Hex(), seq, ctx.Err())
	}
}

// finish answers req and every caller that joined it. A receipt's
// request stays asked until a caller has seen this node's read model show
// the receipt (forget): until then, a second caller would find the intent
// without a receipt in the read model and ask the chain for another one.
// A failed request ends now, so that the next caller asks again.
func (c *chain) finish(req *receiptReq, res receiptResult) {
	req.res = res
	c.mu.Lock()
	if res.err != nil && c.asking[req.intent] == req {
		delete(c.asking, req.intent)
	}
	c.mu.Unlock()
	close(req.finished)
}

// forget ends the answered request of intent's receipt, once the read
// model shows that receipt.
func (c *chain) forget(intent common.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req, ok := c.asking[intent]; ok {
		select {
		case <-req.finished:
			delete(c.asking, intent)
		default:
		}
	}
}

// done answers, with the receipt it has, every request of batch whose
// intent has one in the read model already (asked for again after a block
// whose acknowledgement was lost was stored after all, say), and returns
// the others.
func (c *chain) done(batch []*receiptReq) []*receiptReq {
	rest := batch[:0]
	for _, r := range batch {
		if sr, ok := c.l.receiptOf(r.intent); ok {
			c.finish(r, receiptResult{r: sr})
			continue
		}
		rest = append(rest, r)
	}
	return rest
}

// pending reports whether the receipt of intent has been asked for and
// not yet answered.
func (c *chain) pending(intent common.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.asking[intent]
	return ok
}

func (c *chain) run(ctx context.Context) {
	var inFlight *chainBlock
	for {
		// Wait for a request, or for the block in flight to land.
		var first *receiptReq
		if inFlight == nil {
			select {
			case <-ctx.Done():
				return
			case first = <-c.reqs:
			}
		} else {
			select {
			case <-ctx.Done():
				c.land(ctx, inFlight)
				return
			case first = <-c.reqs:
			case res := <-inFlight.stored:
				inFlight.stored <- res // land reads it
				c.land(ctx, inFlight)
				inFlight = nil
				continue
			}
		}
		batch := make([]*receiptReq, 1, c.l.cfg.ReceiptBatch)
		batch[0] = first
	drain:
		for len(batch) < c.l.cfg.ReceiptBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		// An intent is asked for once at a time (see receipt), so the
		// block in flight holds none of these; one whose receipt was
		// stored although its append reported failure is answered from
		// the read model, here or, once the stale expectation meets the
		// chain's real end, in land.
		if batch = c.done(batch); len(batch) == 0 {
			continue
		}
		blk := c.build(batch)
		if inFlight != nil {
			if !c.land(ctx, inFlight) {
				// The block before was not stored and the chain went
				// back: sign this one again after the chain's real end.
				if batch = c.done(batch); len(batch) == 0 {
					inFlight = nil
					continue
				}
				blk = c.build(batch)
			}
			inFlight = nil
		}
		inFlight = c.launch(ctx, blk)
	}
}

// build signs the batch's receipts after the chain's current end and
// moves the end past them.
func (c *chain) build(batch []*receiptReq) *chainBlock {
	out, rb := c.sign(batch, c.next, c.prev)
	data := appendReceiptBlock(make([]byte, 0, 64+len(rb.Receipts)*420), &rb)
	blk := &chainBlock{batch: batch, out: out, data: data, baseNext: c.next, basePrev: c.prev, stored: make(chan appendResult, 1)}
	c.next += uint64(len(out))
	c.prev = out[len(out)-1].Digest
	return blk
}

// launch starts the block's append, expecting the last stored block's
// sequence.
func (c *chain) launch(ctx context.Context, blk *chainBlock) *chainBlock {
	last := c.last
	id := blk.msgID(c.l.cfg.Node)
	c.l.view.sent(id, ownRecord{data: blk.data, receipts: blk.out})
	go func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		seq, err := c.l.stream.AppendIfLast(wctx, c.subject, blk.data, last, store.WithMsgID(id))
		if err != nil {
			c.l.view.unsent(id)
		}
		blk.stored <- appendResult{seq, err}
	}()
	return blk
}

// land waits for the block's append and answers its requests. On a
// conflict (another writer of the same chain) it reloads the chain's end
// and stores the batch once more, signed after it. It reports whether
// the chain's end is still where the block left it; if not, a block
// signed after this one must be signed again.
func (c *chain) land(ctx context.Context, blk *chainBlock) bool {
	res := <-blk.stored
	if errors.Is(res.err, store.ErrConflict) {
		c.l.log.Warn("receipt chain moved under this node: is another process running with the same node name?", "chain", c.l.cfg.Node)
		c.next, c.prev = blk.baseNext, blk.basePrev
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := c.resume(rctx)
		cancel()
		if err != nil {
			c.answer(blk.batch, nil, 0, err)
			return false
		}
		batch := c.done(blk.batch)
		if len(batch) == 0 {
			return false
		}
		retry := c.build(batch)
		res = <-c.launch(ctx, retry).stored
		if errors.Is(res.err, store.ErrConflict) {
			c.next, c.prev = retry.baseNext, retry.basePrev
			c.answer(blk.batch, nil, 0, fmt.Errorf("%w: receipt chain %s", ErrConflict, c.l.cfg.Node))
			return false
		}
		blk = retry
		if res.err == nil {
			c.stored(blk, res.seq)
		} else {
			c.next, c.prev = blk.baseNext, blk.basePrev
			c.answer(blk.batch, nil, 0, fmt.Errorf("assets: append receipts: %w", res.err))
		}
		return false
	}
	if res.err != nil {
		// Back to the end before this block: the block signed after it
		// links to receipts that were never stored.
		c.next, c.prev = blk.baseNext, blk.basePrev
		c.answer(blk.batch, nil, 0, fmt.Errorf("assets: append receipts: %w", res.err))
		return false
	}
	c.stored(blk, res.seq)
	return true
}

// stored answers a stored block's requests and asks for a checkpoint
// when the chain has passed a multiple of CheckpointEvery.
func (c *chain) stored(blk *chainBlock, seq uint64) {
	c.last = seq
	end := blk.baseNext + uint64(len(blk.out))
	if c.l.head != nil {
		c.l.head.update(head{Index: end - 1, Digest: blk.out[len(blk.out)-1].Digest})
	}
	c.answer(blk.batch, blk.out, seq, nil)
	if end%uint64(c.l.cfg.CheckpointEvery) < uint64(len(blk.out)) {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (c *chain) answer(batch []*receiptReq, out []SignedReceipt, blockSeq uint64, err error) {
	for i, r := range batch {
		if err != nil {
			c.finish(r, receiptResult{err: err})
		} else {
			c.finish(r, receiptResult{r: out[i], blockSeq: blockSeq})
		}
	}
}

// appendReceiptBlock encodes blk exactly as encoding/json does (a test
// holds the two equal, and the projection decodes blocks with
// encoding/json), without reflection: every batch of receipts is one
// block.
func appendReceiptBlock(dst []byte, blk *receiptBlock) []byte {
	dst = append(dst, `{"signer":"`...)
	dst = appendHex(dst, blk.Signer[:])
	dst = append(dst, `","receipts":[`...)
	for i := range blk.Receipts {
		e := &blk.Receipts[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"intent":"`...)
		dst = appendHex(dst, e.Intent[:])
		dst = append(dst, `","sequence":`...)
		dst = strconv.AppendUint(dst, e.Sequence, 10)
		dst = append(dst, `,"index":`...)
		dst = strconv.AppendUint(dst, e.Index, 10)
		dst = append(dst, `,"previous":"`...)
		dst = appendHex(dst, e.Previous[:])
		dst = append(dst, `","time":`...)
		dst = strconv.AppendUint(dst, e.Time, 10)
		dst = append(dst, `,"signature":"`...)
		dst = appendHex(dst, e.Signature[:])
		dst = append(dst, `"}`...)
	}
	return append(dst, "]}"...)
}

// sign builds the batch's receipts in chain order after the receipt with
// digest prev, the first with index next (each links to the digest of the
// one before, which needs no signature), and then signs them on every
// core.
func (c *chain) sign(batch []*receiptReq, next uint64, prev common.Hash) ([]SignedReceipt, receiptBlock) {
	now := uint64(c.l.cfg.Now().Unix())
	out := make([]SignedReceipt, len(batch))
	for i, r := range batch {
		rc := Receipt{Intent: r.intent, Sequence: r.seq, Chain: c.l.cfg.Node, Index: next + uint64(i), Previous: prev, Time: now}
		d := c.l.scheme.ReceiptDigest(&rc)
		out[i] = SignedReceipt{Receipt: rc, Digest: d, Signer: c.l.signer}
		prev = d
	}
	// Even two receipts are signed on two cores: a signature costs some
	// forty microseconds, a goroutine a few hundred nanoseconds, and every
	// transfer of the batch waits for the slowest signer.
	workers := min(runtime.GOMAXPROCS(0), len(out))
	share := func(w int) {
		for i := w; i < len(out); i += workers {
			// Signing with a valid key over a 32-byte digest cannot fail.
			out[i].Signature, _ = Sign(out[i].Digest, c.l.cfg.Signer)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			share(w)
		}()
	}
	share(0) // this goroutine signs a share too
	wg.Wait()
	blk := receiptBlock{Signer: c.l.signer, Receipts: make([]receiptEntry, len(out))}
	for i, r := range out {
		blk.Receipts[i] = receiptEntry{Intent: r.Receipt.Intent, Sequence: r.Receipt.Sequence, Index: r.Receipt.Index,
			Previous: r.Receipt.Previous, Time: r.Receipt.Time, Signature: r.Signature}
	}
	return out, blk
}

// maxCheckpointSize bounds the tree of one checkpoint, and so the work of
// serving a proof.
const maxCheckpointSize = 4096

// checkpointLoop signs checkpoints every CheckpointInterval of the
// ledger's clock, and when the chain says enough receipts wait, until
// ctx ends.
func (l *Ledger) checkpointLoop(ctx context.Context) {
	clock.EveryOrWake(ctx, l.cfg.Clock, l.cfg.CheckpointInterval, l.chain.kick, func(ctx context.Context) {
		for {
			n, err := l.Checkpoint(ctx)
			if err != nil {
				if ctx.Err() == nil {
					l.log.Warn("checkpoint", "err", err)
				}
				return
			}
			if n < maxCheckpointSize {
				return
			}
		}
	})
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
