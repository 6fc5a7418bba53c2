package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/zerorealm/zerorealm/internal/store"
)

// ChainStatus is one node's chain as VerifyAll found it.
type ChainStatus struct {
	Report
	// Size is the number of events stored, past a break too; Root is the
	// base64 RFC 6962 root of them.
	Size uint64 `json:"size"`
	Root string `json:"root,omitempty"`
	// Checkpoint is the newest checkpoint of the node in AUDITCP that
	// verifies with the node's key, with the witnesses that cosigned it.
	Checkpoint *CheckpointStatus `json:"checkpoint,omitempty"`
}

// CheckpointStatus summarises a signed checkpoint.
type CheckpointStatus struct {
	Size      uint64   `json:"size"`
	Root      string   `json:"root"`
	Cosigners []string `json:"cosigners"`
	// Matches says the stored chain still hashes to it.
	Matches bool `json:"matches"`
}

// Result is what VerifyAll found: every chain, and every finding. OK is
// true only when there is no finding.
type Result struct {
	OK       bool          `json:"ok"`
	Chains   []ChainStatus `json:"chains"`
	Findings []Finding     `json:"findings"`
}

// VerifyAll verifies every node's chain in the store, and every node the
// anchors know, as a transparency log:
//
//   - each chain's hash links (Verify), naming a deleted, inserted, edited
//     or purged event;
//   - each chain against every checkpoint that holds it: the anchors
//     (kept outside NATS: a node's own last checkpoint and those it
//     witnessed, or a checkpoint a client kept) and the checkpoints in
//     AUDITCP that verify with the node's key. A chain shorter than a
//     checkpoint was truncated; one whose first events no longer hash to a
//     signed root was rewritten (re-hashed, when its links all verify),
//     and the newest checkpoint it still matches says after which event; a
//     known node without a chain vanished;
//   - AUDITCP itself: a checkpoint signed by another key than the node's
//     pinned one, or checkpoints missing that an anchor remembers.
//
// The node's key is pinned by the anchors; a node no anchor knows is
// checked against the key of its first checkpoint in AUDITCP. The error is
// for failures to read, never for what was found.
func VerifyAll(ctx context.Context, st *store.Store, anchors []Anchor) (Result, error) {
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return Result{}, fmt.Errorf("audit: %w", err)
	}
	cpStream, err := st.Stream(ctx, CheckpointStreamConfig)
	if err != nil {
		return Result{}, fmt.Errorf("audit: %w", err)
	}
	chains, err := nodesOn(ctx, stream, "audit.*", "audit.")
	if err != nil {
		return Result{}, err
	}
	published, err := nodesOn(ctx, cpStream, "auditcp.*", "auditcp.")
	if err != nil {
		return Result{}, err
	}
	byNode := map[string][]Anchor{}
	for _, a := range anchors {
		if !nodePattern.MatchString(a.Node) {
			return Result{}, fmt.Errorf("%w: anchor names node %q", ErrBadCheckpoint, a.Node)
		}
		byNode[a.Node] = append(byNode[a.Node], a)
	}
	nodes := slices.Concat(chains, published)
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	nodes = slices.Compact(nodes)

	res := Result{Chains: []ChainStatus{}, Findings: []Finding{}}
	for _, node := range nodes {
		cs, findings, err := verifyNode(ctx, stream, cpStream, node, byNode[node])
		if err != nil {
			return Result{}, err
		}
		if cs.Size > 0 || cs.Checkpoint != nil {
			res.Chains = append(res.Chains, cs)
		}
		res.Findings = append(res.Findings, findings...)
	}
	res.OK = len(res.Findings) == 0
	return res, nil
}

// heldCheckpoint is a checkpoint a chain is held to, and where it came from.
type heldCheckpoint struct {
	Checkpoint
	source string
}

func verifyNode(ctx context.Context, stream, cpStream *store.Stream, node string, anchors []Anchor) (ChainStatus, []Finding, error) {
	var findings []Finding
	add := func(f Finding) {
		// One finding of a kind per node: several checkpoints often see
		// the same rewrite. The one that says after which event it
		// happened (an Index) says the most, then the one about the
		// largest size.
		for i := range findings {
			if findings[i].Kind == f.Kind {
				old := findings[i]
				if (f.Index != 0) != (old.Index != 0) {
					if f.Index != 0 {
						findings[i] = f
					}
				} else if f.Size > old.Size {
					findings[i] = f
				}
				return
			}
		}
		findings = append(findings, f)
	}

	w := &chainWalk{rep: Report{Node: node}, tree: &merkleTree{}}
	blocks, err := scanChain(ctx, stream, node, w.line)
	if err != nil {
		return ChainStatus{}, nil, err
	}
	if w.treeErr != nil {
		return ChainStatus{}, nil, w.treeErr
	}
	w.rep.Blocks = blocks
	cs := ChainStatus{Report: w.rep, Size: w.tree.size()}
	if cs.Size > 0 {
		root, _ := w.tree.root(cs.Size)
		cs.Root = base64.StdEncoding.EncodeToString(root[:])
	}
	if b := w.rep.Break; b != nil {
		index := b.Index
		if b.Kind == KindEdited && index > 1 {
			index-- // the event whose bytes no longer hash to the next one's prev
		}
		add(Finding{Node: node, Kind: b.Kind, Index: index, Detail: fmt.Sprintf("node %s's chain at event #%d (stream seq %d): %s", node, b.Index, b.Seq, b.Reason)})
	}

	// The checkpoints to hold the chain to: the anchors first (they pin
	// the key), then AUDITCP's history.
	var held []heldCheckpoint
	var pinned []string // the node's keys: the anchors', and those they vouched for
	for _, a := range anchors {
		c, err := a.open()
		if err != nil {
			add(Finding{Node: node, Kind: KindBadAnchor, Detail: fmt.Sprintf("%s does not verify: %v", a.Source, err)})
			continue
		}
		if !slices.Contains(pinned, c.Key) {
			pinned = append(pinned, c.Key)
		}
		held = append(held, heldCheckpoint{c, a.Source})
	}
	var newest *heldCheckpoint
	follower, err := cpStream.Follow(ctx, CheckpointSubject(node), func(m store.Msg) error {
		p, err := parsePublished(m.Data)
		if err != nil {
			add(Finding{Node: node, Kind: KindBadAnchor, Detail: fmt.Sprintf("AUDITCP seq %d is not a checkpoint: %v", m.Seq, err)})
			return nil
		}
		if len(pinned) == 0 {
			pinned = []string{p.Key} // no anchor knows the node: its first key
		}
		var c Checkpoint
		for _, k := range pinned {
			if c, err = OpenCheckpoint([]byte(p.Checkpoint), k); err == nil {
				break
			}
		}
		if err == nil && c.Node != node {
			err = fmt.Errorf("%w: a checkpoint of node %q", ErrBadCheckpoint, c.Node)
		}
		if err != nil {
			add(Finding{Node: node, Kind: KindBadAnchor, Detail: fmt.Sprintf("AUDITCP seq %d does not verify with node %s's keys: %v", m.Seq, node, err)})
			return nil
		}
		if !slices.Contains(pinned, p.Key) {
			// Countersigned by a pinned key: a rotation it vouches for.
			if _, err := OpenCheckpoint([]byte(p.Checkpoint), p.Key); err == nil {
				pinned = append(pinned, p.Key)
			}
		}
		h := heldCheckpoint{c, fmt.Sprintf("the checkpoint at AUDITCP seq %d", m.Seq)}
		held = append(held, h)
		if newest == nil || c.Size >= newest.Size {
			newest = &h
		}
		return nil
	})
	if err != nil {
		return ChainStatus{}, nil, fmt.Errorf("audit: read checkpoints of %q: %w", node, err)
	}
	follower.Stop()

	// The newest checkpoint the chain still matches says after which
	// event a rewrite happened.
	broken := w.rep.Break != nil
	var good uint64
	for _, h := range held {
		if _, bad := holdTo(node, w.tree, h.Checkpoint, h.source, broken); !bad && h.Size > good {
			good = h.Size
		}
	}
	for _, h := range held {
		f, bad := holdTo(node, w.tree, h.Checkpoint, h.source, broken)
		if !bad {
			continue
		}
		if f.Kind == KindRewritten && f.Size <= cs.Size {
			f.Index = good + 1
			if good > 0 {
				f.Detail += fmt.Sprintf("; it still matches the checkpoint at size %d, so it was rewritten after event #%d", good, good)
			} else {
				f.Detail += "; it matches no checkpoint held, so events may have changed from the first on"
			}
			if w.rep.Break == nil {
				f.Kind = KindRehashed
				f.Detail = "every link of the hash chain verifies, yet " + f.Detail + ": events were changed and the chain re-hashed"
			}
		}
		add(f)
	}
	for _, a := range anchors {
		c, err := a.open()
		if err != nil || (newest != nil && newest.Size >= c.Size) {
			continue
		}
		have := "none"
		if newest != nil {
			have = fmt.Sprintf("one of size %d", newest.Size)
		}
		add(Finding{Node: node, Kind: KindCPsRemoved, Size: c.Size, Detail: fmt.Sprintf("%s is of size %d, but AUDITCP holds %s: node %s's checkpoints were removed", a.Source, c.Size, have, node)})
	}

	if newest != nil {
		_, bad := holdTo(node, w.tree, newest.Checkpoint, newest.source, broken)
		cs.Checkpoint = &CheckpointStatus{Size: newest.Size, Root: base64.StdEncoding.EncodeToString(newest.Root[:]), Matches: !bad, Cosigners: []string{}}
		cosigned, keys, err := cosignaturesOf(ctx, cpStream, node)
		if err != nil {
			return ChainStatus{}, nil, err
		}
		for witness, msg := range cosigned {
			if len(Cosigners(msg, []string{keys[witness]})) == 1 {
				if cn, err := OpenCheckpoint(msg, newest.Key); err == nil && cn.Size == newest.Size && cn.Root == newest.Root {
					cs.Checkpoint.Cosigners = append(cs.Checkpoint.Cosigners, witness)
				}
			}
		}
		sort.Strings(cs.Checkpoint.Cosigners)
	}
	return cs, findings, nil
}

// cosignaturesOf reads the newest cosignature of every witness of node:
// the cosigned notes and the witnesses' verifier keys, by witness.
func cosignaturesOf(ctx context.Context, cpStream *store.Stream, node string) (map[string][]byte, map[string]string, error) {
	subjects, err := cpStream.Subjects(ctx, "auditcp."+node+".cosig.*")
	if err != nil {
		return nil, nil, fmt.Errorf("audit: list cosignatures of %q: %w", node, err)
	}
	notes, keys := map[string][]byte{}, map[string]string{}
	for subj := range subjects {
		witness := cosignerName(subj, node)
		if witness == "" {
			continue
		}
		m, err := cpStream.GetLast(ctx, subj)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("audit: read cosignature of %q by %q: %w", node, witness, err)
		}
		var c cosignature
		if len(m.Data) > maxPublishedBytes || json.Unmarshal(m.Data, &c) != nil {
			continue
		}
		notes[witness], keys[witness] = []byte(c.Checkpoint), c.Key
	}
	return notes, keys, nil
}
