package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
)

// WitnessConfig configures a Witness.
type WitnessConfig struct {
	// Node is the witnessing node; its own checkpoints are not witnessed.
	Node string
	// Key cosigns; its origin must name Node.
	Key *Key
	// Dir keeps the last checkpoint accepted of each other node, in
	// witnessed/<node>.json (the same directory as the Log's Dir).
	Dir string
	// Logger; default discards.
	Logger *slog.Logger
}

// Witness follows every other node's checkpoints in AUDITCP, checks each
// new one for consistency with the last it accepted from that node, and
// cosigns it (C2SP tlog-cosignature) into AUDITCP. The consistency proof
// comes with the checkpoint (from the node's previous one); when the
// witness has not seen that previous one (it was down, or the message is
// gone) it proves consistency from the chain in the store instead. An
// inconsistent checkpoint is refused, logged at error, counted and
// reported by Refusals, and the witness keeps its last accepted
// checkpoint, on disk too, so that a rewrite cannot be hidden by
// restarting either side.
//
// A node's verifier key is pinned at the first checkpoint the witness
// accepts from it (trust on first use, then kept in Dir); a checkpoint
// signed by another key is refused.
type Witness struct {
	cfg      WitnessConfig
	st       *store.Store
	stream   *store.Stream // AUDIT
	cpStream *store.Stream // AUDITCP

	mu       sync.Mutex
	accepted map[string]Checkpoint // last accepted, by node
	refusals map[string]Finding    // newest refusal, by node
	unsigned map[string]bool       // accepted during replay, not yet cosigned
	// reached records the nodes whose accepted checkpoint the replay has
	// passed: a smaller checkpoint after it is a rollback, not history.
	reached map[string]bool
	live    bool

	cosigned, refused atomic.Uint64
	follower          *store.Follower
}

// WitnessStats are a witness's counters, for metrics.
type WitnessStats struct {
	Cosigned uint64 // checkpoints cosigned
	Refused  uint64 // checkpoints refused; each one was logged
}

// StartWitness loads the checkpoints witnessed before, replays AUDITCP and
// then follows it until ctx ends or Close is called.
func StartWitness(ctx context.Context, st *store.Store, cfg WitnessConfig) (*Witness, error) {
	if cfg.Key == nil || nodeOf(cfg.Key.Origin()) != cfg.Node {
		return nil, fmt.Errorf("audit: witness %q needs its own checkpoint key", cfg.Node)
	}
	if cfg.Dir == "" {
		return nil, errors.New("audit: a witness needs a directory to keep what it accepted")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Witness{cfg: cfg, st: st, accepted: map[string]Checkpoint{}, refusals: map[string]Finding{}, unsigned: map[string]bool{}, reached: map[string]bool{}}
	var err error
	if w.stream, err = st.Stream(ctx, StreamConfig); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if w.cpStream, err = st.Stream(ctx, CheckpointStreamConfig); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	anchors, err := LoadAnchors(cfg.Dir)
	if err != nil {
		// Kept files that do not verify: VerifyAll reports them; witness
		// with the ones that do.
		cfg.Logger.Error("audit witness: a kept checkpoint does not verify", "err", err)
	}
	for _, a := range anchors {
		if a.Node == cfg.Node || !a.witnessed {
			continue
		}
		c, _ := a.open() // verified by LoadAnchors
		w.accepted[a.Node] = c
		// What happened while this witness was away: the chain in the
		// store must still hold what it accepted.
		tree, err := treeOf(ctx, w.stream, a.Node)
		if err != nil {
			return nil, err
		}
		if f, bad := holdTo(a.Node, tree, c, "the checkpoint this witness accepted", false); bad {
			w.refuse(a.Node, c.Size, fmt.Sprintf("node %s's chain was rewritten after size %d: %s", a.Node, c.Size, f.Detail))
		}
	}
	w.follower, err = w.cpStream.Follow(ctx, "auditcp.*", func(m store.Msg) error {
		w.observe(ctx, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: witness: %w", err)
	}
	// What was accepted during the replay is cosigned once, at its newest.
	w.mu.Lock()
	w.live = true
	pending := w.unsigned
	w.unsigned = map[string]bool{}
	w.mu.Unlock()
	for node := range pending {
		w.mu.Lock()
		c := w.accepted[node]
		w.mu.Unlock()
		w.cosign(ctx, c)
	}
	return w, nil
}

// Close stops following.
func (w *Witness) Close() { w.follower.Stop() }

// WaitApplied blocks until the witness has handled the given AUDITCP
// sequence.
func (w *Witness) WaitApplied(ctx context.Context, seq uint64) error {
	return w.follower.WaitApplied(ctx, seq)
}

// Stats returns the counters.
func (w *Witness) Stats() WitnessStats {
	return WitnessStats{Cosigned: w.cosigned.Load(), Refused: w.refused.Load()}
}

// Accepted is the last checkpoint accepted of node.
func (w *Witness) Accepted(node string) (Checkpoint, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.accepted[node]
	return c, ok
}

// Refusals are the newest refusal of each node whose checkpoint this
// witness refused, by node name.
func (w *Witness) Refusals() []Finding {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Finding, 0, len(w.refusals))
	for _, f := range w.refusals {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func (w *Witness) observe(ctx context.Context, m store.Msg) {
	node, ok := strings.CutPrefix(m.Subject, "auditcp.")
	if !ok || !nodePattern.MatchString(node) || node == w.cfg.Node {
		return
	}
	p, err := parsePublished(m.Data)
	if err != nil {
		w.refuse(node, 0, fmt.Sprintf("AUDITCP seq %d: %v", m.Seq, err))
		return
	}
	w.mu.Lock()
	prev, known := w.accepted[node]
	live, reached := w.live, w.reached[node]
	w.mu.Unlock()
	key := p.Key
	if known {
		key = prev.Key
	}
	c, err := OpenCheckpoint([]byte(p.Checkpoint), key)
	if err == nil && c.Node != node {
		err = fmt.Errorf("%w: a checkpoint of node %q published as node %q's", ErrBadCheckpoint, c.Node, node)
	}
	if err != nil {
		w.refuse(node, 0, fmt.Sprintf("node %s's checkpoint at AUDITCP seq %d does not verify with its key %s: %v", node, m.Seq, key, err))
		return
	}
	switch {
	case !known:
		// First sight: nothing to be consistent with; the key is pinned.
	case c.Size < prev.Size:
		if live || reached {
			w.refuse(node, prev.Size, fmt.Sprintf("node %s's chain was rewritten after size %d: it published a checkpoint of size %d, smaller than the %d accepted", node, c.Size, c.Size, prev.Size))
		}
		return // during the replay: history older than what was accepted
	case c.Size == prev.Size:
		if c.Root != prev.Root {
			w.refuse(node, prev.Size, fmt.Sprintf("node %s's chain was rewritten: a checkpoint of size %d with another root than the one accepted", node, prev.Size))
			return
		}
		w.mu.Lock()
		w.reached[node] = true
		w.mu.Unlock()
		return
	default:
		if err := w.consistent(ctx, node, prev, c, p); err != nil {
			w.refuse(node, prev.Size, fmt.Sprintf("node %s's chain was rewritten after size %d: its checkpoint of size %d is not consistent with the one accepted: %v", node, prev.Size, c.Size, err))
			return
		}
	}
	if p.Key != c.Key {
		// Signed by the pinned key and by a new one: the node rotated
		// its key, and the pinned key vouches for the new one.
		if rotated, err := OpenCheckpoint([]byte(p.Checkpoint), p.Key); err == nil {
			w.cfg.Logger.Info("audit witness follows a node's key rotation", "node", node, "old", c.Key, "new", p.Key)
			c = rotated
		}
	}
	if err := writeAnchor(filepath.Join(w.cfg.Dir, witnessedDir, node+".json"), anchorOf(c)); err != nil {
		w.cfg.Logger.Error("audit witness: cannot keep the accepted checkpoint; not cosigning it", "node", node, "size", c.Size, "err", err)
		return
	}
	w.mu.Lock()
	w.accepted[node] = c
	w.reached[node] = true
	delete(w.refusals, node)
	if !live {
		w.unsigned[node] = true
	}
	w.mu.Unlock()
	if live {
		w.cosign(ctx, c)
	}
}

// consistent checks that c extends prev: with the proof published beside
// c when it starts at prev, else with a proof computed from the chain in
// the store, which must hash to both signed roots.
func (w *Witness) consistent(ctx context.Context, node string, prev, c Checkpoint, p published) error {
	if p.From == prev.Size && len(p.Proof) > 0 {
		return VerifyConsistency(p.Proof, prev.Size, prev.Root, c.Size, c.Root)
	}
	tree, err := treeOf(ctx, w.stream, node)
	if err != nil {
		return err
	}
	if tree.size() < c.Size {
		return fmt.Errorf("the store holds %d of its events", tree.size())
	}
	root, err := tree.root(c.Size)
	if err != nil {
		return err
	}
	if root != c.Root {
		return errors.New("the chain in the store does not hash to its root")
	}
	proof, err := tree.consistency(prev.Size, c.Size)
	if err != nil {
		return err
	}
	return VerifyConsistency(proof, prev.Size, prev.Root, c.Size, c.Root)
}

func (w *Witness) refuse(node string, size uint64, detail string) {
	w.refused.Add(1)
	w.cfg.Logger.Error("audit witness refused a checkpoint", "node", node, "witness", w.cfg.Node, "finding", detail)
	w.mu.Lock()
	w.refusals[node] = Finding{Node: node, Kind: KindRefused, Size: size, Detail: "witness " + w.cfg.Node + ": " + detail}
	w.mu.Unlock()
}

func (w *Witness) cosign(ctx context.Context, c Checkpoint) {
	msg, err := w.cfg.Key.cosign(c)
	if err == nil {
		var data []byte
		data, err = json.Marshal(cosignature{Checkpoint: string(msg), Key: w.cfg.Key.VerifierKey()})
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err = w.cpStream.Append(pctx, cosignatureSubject(c.Node, w.cfg.Node), data)
			cancel()
		}
	}
	if err != nil {
		w.cfg.Logger.Error("audit witness: cosignature not published", "node", c.Node, "size", c.Size, "err", err)
		return
	}
	w.cosigned.Add(1)
}
