package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/zerorealm/zerorealm/internal/store"
)

// ErrRewritten is wrapped by VerifyExtends when a newer checkpoint is not
// an extension of a kept one: the chain was rewritten.
var ErrRewritten = errors.New("audit: chain rewritten")

// Served is a node's newest checkpoint as the realm serves it: the signed
// note with the node's signature and every witness cosignature that
// verifies, and its parsed head. Saved to a file, it is an Anchor for
// `zerorealm audit verify --checkpoint`.
type Served struct {
	Node       string   `json:"node"`
	Origin     string   `json:"origin"`
	Size       uint64   `json:"size"`
	Root       string   `json:"root"` // base64, as in the note
	Key        string   `json:"key"`  // the node's verifier key
	Checkpoint string   `json:"checkpoint"`
	Cosigners  []string `json:"cosigners"` // the witness nodes whose cosignature is in the note
}

// LatestCheckpoints returns the newest checkpoint of node (or of every
// node, when node is empty) from AUDITCP, verified with the node's key as
// pinned (pins, by node; e.g. what this node's witness accepted) or else
// as published beside it, and merged with its witnesses' cosignatures.
func LatestCheckpoints(ctx context.Context, st *store.Store, node string, pins map[string]string) ([]Served, error) {
	cpStream, err := st.Stream(ctx, CheckpointStreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	nodes := []string{node}
	if node == "" {
		if nodes, err = nodesOn(ctx, cpStream, "auditcp.*", "auditcp."); err != nil {
			return nil, err
		}
	} else if !nodePattern.MatchString(node) {
		return nil, fmt.Errorf("audit: node name %q must match %s", node, nodePattern)
	}
	out := []Served{}
	for _, n := range nodes {
		m, err := cpStream.GetLast(ctx, CheckpointSubject(n))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: read checkpoint of %q: %w", n, err)
		}
		p, err := parsePublished(m.Data)
		if err != nil {
			continue // VerifyAll reports it
		}
		key := p.Key
		if pinned, ok := pins[n]; ok {
			key = pinned
		}
		c, err := OpenCheckpoint([]byte(p.Checkpoint), key)
		if err != nil || c.Node != n {
			continue // VerifyAll reports it
		}
		if key != p.Key {
			if rotated, err := OpenCheckpoint([]byte(p.Checkpoint), p.Key); err == nil {
				c = rotated
			}
		}
		cosigned, keys, err := cosignaturesOf(ctx, cpStream, n)
		if err != nil {
			return nil, err
		}
		merged := mergeSignatures(c, cosigned, keys)
		var witnessKeys []string
		for _, k := range keys {
			witnessKeys = append(witnessKeys, k)
		}
		cosigners := []string{}
		for _, name := range Cosigners(merged, witnessKeys) {
			if w := nodeOf(name); w != "" {
				cosigners = append(cosigners, w)
			}
		}
		sort.Strings(cosigners)
		out = append(out, Served{Node: n, Origin: c.Origin, Size: c.Size, Root: base64.StdEncoding.EncodeToString(c.Root[:]),
			Key: c.Key, Checkpoint: string(merged), Cosigners: cosigners})
	}
	return out, nil
}

// Prove answers proofs for any node's chain from the chain in the store
// (this node's own Log answers from memory). A proof computed from a
// tampered chain does not verify against a checkpoint signed before the
// tampering, so the store need not be trusted for it.
func Prove(ctx context.Context, st *store.Store, node string) (*Prover, error) {
	if !nodePattern.MatchString(node) {
		return nil, fmt.Errorf("audit: node name %q must match %s", node, nodePattern)
	}
	stream, err := st.Stream(ctx, StreamConfig)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	t, err := treeOf(ctx, stream, node)
	if err != nil {
		return nil, err
	}
	return &Prover{tree: t}, nil
}

// Prover answers inclusion and consistency proofs of one chain.
type Prover struct{ tree *merkleTree }

// Size is the number of events the prover holds.
func (p *Prover) Size() uint64 { return p.tree.size() }

// Inclusion proves that the event at index (from 1) is in the tree of
// size events.
func (p *Prover) Inclusion(index, size uint64) ([]tlog.Hash, error) {
	if index == 0 {
		return nil, noProof("index 0 (events count from 1)")
	}
	return p.tree.inclusion(index-1, size)
}

// Consistency proves that the tree of from events is a prefix of the tree
// of to events.
func (p *Prover) Consistency(from, to uint64) ([]tlog.Hash, error) {
	return p.tree.consistency(from, to)
}

// Prover is this log's own prover, from the tree in memory; nil when the
// log keeps no tree (no checkpoint key).
func (l *Log) Prover() *Prover {
	if l.tree == nil {
		return nil
	}
	return &Prover{tree: l.tree}
}

// VerifyExtends checks that newer (a signed checkpoint note, as served)
// extends the checkpoint kept, given the consistency proof from kept's
// size to newer's: what a client that kept an old checkpoint does to hold
// the log to it. newer must verify with kept's key (or be countersigned by
// it after a rotation). A newer checkpoint that is smaller, of the same
// size with another root, or whose proof fails is ErrRewritten, naming the
// size after which the chain was rewritten.
func VerifyExtends(kept Anchor, newer []byte, proof []tlog.Hash) (Checkpoint, error) {
	old, err := kept.open()
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := OpenCheckpoint(newer, old.Key)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != old.Origin {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, want %q", ErrBadCheckpoint, c.Origin, old.Origin)
	}
	switch {
	case c.Size < old.Size:
		return c, fmt.Errorf("%w: node %s's chain was rewritten after size %d: the newer checkpoint has only %d events", ErrRewritten, c.Node, c.Size, c.Size)
	case c.Size == old.Size:
		if c.Root != old.Root {
			return c, fmt.Errorf("%w: node %s's chain was rewritten: size %d now has another root", ErrRewritten, c.Node, c.Size)
		}
		return c, nil
	}
	if err := VerifyConsistency(proof, old.Size, old.Root, c.Size, c.Root); err != nil {
		return c, fmt.Errorf("%w: node %s's chain was rewritten after size %d: the checkpoint of size %d does not extend it: %w", ErrRewritten, c.Node, old.Size, c.Size, err)
	}
	return c, nil
}
