package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zerorealm/zerorealm/internal/store"
)

// CheckpointStreamConfig is the AUDITCP stream: every node's signed
// checkpoints (subject "auditcp.<node>", each with a consistency proof
// from the one before) and the cosignatures of its witnesses
// ("auditcp.<node>.cosig.<witness>"). The newest CheckpointHistory of each
// are kept: witnesses need only the newest, and a verifier uses the
// history to tell after which checkpoint a chain was rewritten, while
// replaying it (at a witness's start, at each verification) stays cheap.
var CheckpointStreamConfig = store.StreamConfig{Name: "AUDITCP", Subjects: []string{"auditcp.>"}, MaxMsgsPerSubject: CheckpointHistory}

// CheckpointHistory is how many checkpoints of each node AUDITCP keeps:
// at one a second, a little over an hour of a busy node.
const CheckpointHistory = 4096

// CheckpointSubject is where a node publishes its checkpoints.
func CheckpointSubject(node string) string { return "auditcp." + node }

// cosignatureSubject is where witness publishes its cosignatures of node.
func cosignatureSubject(node, witness string) string {
	return "auditcp." + node + ".cosig." + witness
}

// published is a checkpoint as stored in AUDITCP: the signed note, the
// verifier key that signed it (for witnesses that have not pinned it yet)
// and the consistency proof from the node's previous published
// checkpoint.
type published struct {
	Checkpoint string      `json:"checkpoint"`
	Key        string      `json:"key"`
	From       uint64      `json:"from,omitempty"`
	Proof      []tlog.Hash `json:"proof,omitempty"`
}

// cosignature is a witness's cosigned copy of a checkpoint, as stored in
// AUDITCP.
type cosignature struct {
	Checkpoint string `json:"checkpoint"` // the note with the node's signature and the witness's cosignature
	Key        string `json:"key"`        // the witness's verifier key
}

// maxPublishedBytes bounds a checkpoint message read from the store.
const maxPublishedBytes = 64 << 10

func parsePublished(data []byte) (published, error) {
	var p published
	if len(data) > maxPublishedBytes {
		return p, fmt.Errorf("%w: message of %d bytes", ErrBadCheckpoint, len(data))
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	if len(p.Proof) > 128 {
		return p, fmt.Errorf("%w: proof of %d hashes", ErrBadCheckpoint, len(p.Proof))
	}
	return p, nil
}

// scanChain calls fn with every event line of a node's chain as stored,
// in order, with its block's stream sequence.
func scanChain(ctx context.Context, stream *store.Stream, node string, fn func(seq uint64, line []byte)) (blocks uint64, err error) {
	follower, err := stream.Follow(ctx, Subject(node), func(m store.Msg) error {
		blocks++
		for line := range bytes.SplitSeq(m.Data, []byte{'\n'}) {
			fn(m.Seq, line)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit: read chain %q: %w", node, err)
	}
	follower.Stop()
	return blocks, nil
}

// treeOf builds the Merkle tree of a node's chain as stored now, in memory.
func treeOf(ctx context.Context, stream *store.Stream, node string) (*merkleTree, error) {
	return fillTree(ctx, stream, node, &merkleTree{})
}

// fillTree appends a node's chain as stored now to t.
func fillTree(ctx context.Context, stream *store.Stream, node string, t *merkleTree) (*merkleTree, error) {
	var appendErr error
	if _, err := scanChain(ctx, stream, node, func(_ uint64, line []byte) {
		if appendErr == nil {
			appendErr = t.append(line)
		}
	}); err != nil {
		return nil, err
	}
	return t, appendErr
}

// openTransparency rebuilds the tree of this node's chain from the store
// and holds it to the node's own last checkpoint, kept in Dir. A chain
// that is shorter than that checkpoint, or whose first events no longer
// hash to its root, has been cut or rewritten while the node was away:
// that is logged at error, counted and kept for Verify, and the old
// checkpoint is kept beside the new ones as evidence. The node carries on
// appending (decisions must still be recorded), but its next checkpoints
// are not consistent with the ones its witnesses accepted, so they refuse
// them and say so too.
func (l *Log) openTransparency(ctx context.Context, st *store.Store) error {
	if origin := l.cfg.Key.Origin(); nodeOf(origin) != l.cfg.Node {
		return fmt.Errorf("audit: checkpoint key %q is not node %q's", origin, l.cfg.Node)
	}
	if l.cfg.Dir == "" {
		return errors.New("audit: a checkpoint key needs a directory to keep the last checkpoint in")
	}
	if l.cfg.CheckpointEvery <= 0 {
		l.cfg.CheckpointEvery = time.Second
	}
	var err error
	if l.cpStream, err = st.Stream(ctx, CheckpointStreamConfig); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	// The node's own tree lives as long as the node: its stored hashes go
	// to a file beside the checkpoint, memory keeps O(log n) of them.
	if err := os.MkdirAll(l.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	t, err := newFileTree(filepath.Join(l.cfg.Dir, "tree-hashes"))
	if err != nil {
		return err
	}
	if l.tree, err = fillTree(ctx, l.stream, l.cfg.Node, t); err != nil {
		_ = t.close()
		return err
	}
	path := filepath.Join(l.cfg.Dir, ownAnchorFile)
	anchor, err := ReadAnchorFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil // a new node, or one that never checkpointed
	case err != nil:
		l.startFinding(Finding{Node: l.cfg.Node, Kind: KindBadAnchor, Detail: "the node's own last checkpoint does not verify: " + err.Error()})
	case anchor.Key != l.cfg.Key.VerifierKey() && (l.cfg.PreviousKey == nil || anchor.Key != l.cfg.PreviousKey.VerifierKey()):
		l.startFinding(Finding{Node: l.cfg.Node, Kind: KindBadAnchor, Detail: "the node's own last checkpoint was signed by key " + anchor.Key + ", not the node's key " + l.cfg.Key.VerifierKey()})
	default:
		c, _ := anchor.open() // verified by ReadAnchorFile
		anchor.Source = "node " + l.cfg.Node + "'s own last checkpoint"
		if f, bad := holdTo(l.cfg.Node, l.tree, c, anchor.Source, false); bad {
			l.startFinding(f)
		} else {
			l.lastCP = c
			return nil
		}
	}
	evidence := fmt.Sprintf("%s%s%d", path, rewrittenSuffix, time.Now().Unix())
	if err := os.Rename(path, evidence); err != nil {
		l.cfg.Logger.Error("audit: cannot keep the contradicted checkpoint as evidence", "path", path, "err", err)
	}
	return nil
}

func (l *Log) startFinding(f Finding) {
	l.startFindings = append(l.startFindings, f)
	l.cfg.Logger.Error("audit chain does not match this node's own last checkpoint", "node", f.Node, "kind", f.Kind, "finding", f.Detail)
}

// holdTo compares a tree with a checkpoint of it: bad when the tree is
// empty (the chain vanished), shorter (events were removed: from its end
// if its hash chain is intact, else where the chain breaks) or its first
// c.Size leaves have another root (rewritten).
func holdTo(node string, t *merkleTree, c Checkpoint, source string, broken bool) (Finding, bool) {
	size := t.size()
	switch {
	case size == 0:
		return Finding{Node: node, Kind: KindVanished, Size: c.Size,
			Detail: fmt.Sprintf("known node %s has no chain: %s signed %d events", node, source, c.Size)}, true
	case size < c.Size && broken:
		return Finding{Node: node, Kind: KindRewritten, Size: c.Size,
			Detail: fmt.Sprintf("node %s's chain holds %d events, but %s signed %d: events were removed", node, size, source, c.Size)}, true
	case size < c.Size:
		return Finding{Node: node, Kind: KindTruncated, Index: size + 1, Size: c.Size,
			Detail: fmt.Sprintf("node %s's chain holds %d events, but %s signed %d: events %d to %d were removed from its end (or events anywhere, and the chain re-hashed)", node, size, source, c.Size, size+1, c.Size)}, true
	}
	root, err := t.root(c.Size)
	if err != nil || root != c.Root {
		return Finding{Node: node, Kind: KindRewritten, Size: c.Size,
			Detail: fmt.Sprintf("node %s's first %d events do not hash to the root %s signed (%s): the chain was rewritten", node, c.Size, source, c.Root)}, true
	}
	return Finding{}, false
}

// grow adds a stored block's events to the tree.
func (l *Log) grow(block []byte) {
	if l.tree == nil {
		return
	}
	for line := range bytes.SplitSeq(block, []byte{'\n'}) {
		if err := l.tree.append(line); err != nil {
			l.cfg.Logger.Error("audit: merkle tree", "err", err)
		}
	}
}

// checkpointLoop signs a checkpoint every CheckpointEvery when the chain
// grew, and a last one when Close has stored every queued event.
func (l *Log) checkpointLoop() {
	defer close(l.cpDone)
	tick := time.NewTicker(l.cfg.CheckpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			l.checkpointIfGrown()
		case <-l.done: // the writer stored everything and stopped
			l.checkpointIfGrown()
			if err := l.tree.close(); err != nil {
				l.cfg.Logger.Warn("audit: close the tree's hash file", "err", err)
			}
			return
		}
	}
}

func (l *Log) checkpointIfGrown() {
	ctx, cancel := context.WithTimeout(l.stopping, 10*time.Second)
	defer cancel()
	if _, err := l.Checkpoint(ctx); err != nil {
		l.cpFailures.Add(1)
		l.cfg.Logger.Error("audit checkpoint", "node", l.cfg.Node, "err", err)
	}
}

// Checkpoint signs the tree as it is now if it grew since the last
// checkpoint, keeps it in Dir (atomically) and publishes it with a
// consistency proof from the previous one. It returns the newest
// checkpoint. The checkpoint is kept on disk before it is published, so a
// node never has published a checkpoint it does not remember.
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	if l.cfg.Key == nil {
		return Checkpoint{}, errors.New("audit: this log has no checkpoint key")
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	prev := l.lastCP
	size := l.tree.size()
	if size == 0 || size == prev.Size {
		return prev, nil
	}
	root, err := l.tree.root(size)
	if err != nil {
		return prev, err
	}
	c, err := l.cfg.Key.sign(size, root, l.cfg.PreviousKey)
	if err != nil {
		return prev, err
	}
	if err := writeAnchor(filepath.Join(l.cfg.Dir, ownAnchorFile), anchorOf(c)); err != nil {
		return prev, err
	}
	l.lastCP = c
	l.checkpoints.Add(1)
	msg := published{Checkpoint: string(c.Note), Key: c.Key}
	if prev.Size > 0 && prev.Size < size {
		if msg.Proof, err = l.tree.consistency(prev.Size, size); err != nil {
			return c, err
		}
		msg.From = prev.Size
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return c, err
	}
	if _, err := l.cpStream.Append(ctx, CheckpointSubject(l.cfg.Node), data); err != nil {
		return c, fmt.Errorf("audit: publish checkpoint at size %d: %w", size, err)
	}
	return c, nil
}

// LastCheckpoint is the newest checkpoint this node signed (the zero
// Checkpoint before the first).
func (l *Log) LastCheckpoint() Checkpoint {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	return l.lastCP
}

// StartFindings are the ways the stored chain failed this node's own last
// checkpoint when the log opened.
func (l *Log) StartFindings() []Finding { return append([]Finding(nil), l.startFindings...) }

// InclusionProof proves that the event at index (from 1, as in
// Event.Index) is in this node's tree of size events: the RFC 6962 audit
// path, leaf first.
func (l *Log) InclusionProof(index, size uint64) ([]tlog.Hash, error) {
	if l.tree == nil || index == 0 {
		return nil, noProof("index %d", index)
	}
	return l.tree.inclusion(index-1, size)
}

// ConsistencyProof proves that this node's tree of from events is a prefix
// of its tree of to events (RFC 6962 consistency proof).
func (l *Log) ConsistencyProof(from, to uint64) ([]tlog.Hash, error) {
	if l.tree == nil {
		return nil, noProof("no tree")
	}
	return l.tree.consistency(from, to)
}

// VerifyInclusion checks an inclusion proof of an event (its stored
// bytes, at index from 1) in a tree of size events with the given root.
func VerifyInclusion(proof []tlog.Hash, size uint64, root tlog.Hash, index uint64, event []byte) error {
	if index == 0 || index > size {
		return noProof("index %d in size %d", index, size)
	}
	return tlog.CheckRecord(proof, int64(size), root, int64(index-1), tlog.RecordHash(event))
}

// VerifyConsistency checks that the tree (from, fromRoot) is a prefix of
// (to, toRoot).
func VerifyConsistency(proof []tlog.Hash, from uint64, fromRoot tlog.Hash, to uint64, toRoot tlog.Hash) error {
	if from == 0 || from > to {
		return noProof("from %d to %d", from, to)
	}
	return tlog.CheckTree(proof, int64(to), toRoot, int64(from), fromRoot)
}

// cosignerName is the witness named by a cosignature subject of node.
func cosignerName(subject, node string) string {
	w, ok := strings.CutPrefix(subject, "auditcp."+node+".cosig.")
	if !ok || !nodePattern.MatchString(w) {
		return ""
	}
	return w
}
