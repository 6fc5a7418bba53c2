package audit

import (
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// merkleTree is the RFC 6962 Merkle tree over one chain's events (leaf: an
// event's stored bytes), kept as tlog's stored hashes and grown one leaf at
// a time, so a checkpoint of a long chain costs O(log n) new hashes rather
// than a pass over the whole chain. It is safe for one appender and many
// readers.
//
// Its size is about two hashes (64 bytes) per event, in memory.
type merkleTree struct {
	mu     sync.RWMutex
	hashes []tlog.Hash // in tlog's storage order
	n      int64
}

// read is the tree's tlog.HashReader; the caller holds mu.
func (t *merkleTree) read(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("audit: tree hash %d not stored (%d stored)", x, len(t.hashes))
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// append adds one leaf. It fails only if the tree lost its own hashes,
// which would be a bug.
func (t *merkleTree) append(leaf []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	hs, err := tlog.StoredHashes(t.n, leaf, tlog.HashReaderFunc(t.read))
	if err != nil {
		return fmt.Errorf("audit: merkle tree: %w", err)
	}
	t.hashes = append(t.hashes, hs...)
	t.n++
	return nil
}

// size is the number of leaves.
func (t *merkleTree) size() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return uint64(t.n)
}

// root is the tree hash of the first n leaves.
func (t *merkleTree) root(n uint64) (tlog.Hash, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if int64(n) > t.n {
		return tlog.Hash{}, fmt.Errorf("%w: size %d is beyond the tree's %d", ErrNoProof, n, t.n)
	}
	if n == 0 {
		return emptyRoot, nil
	}
	return tlog.TreeHash(int64(n), tlog.HashReaderFunc(t.read))
}

// inclusion proves that leaf index (from 0) is in the tree of the first
// size leaves.
func (t *merkleTree) inclusion(index, size uint64) (tlog.RecordProof, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if index >= size || int64(size) > t.n {
		return nil, fmt.Errorf("%w: index %d in size %d (the tree has %d)", ErrNoProof, index, size, t.n)
	}
	return tlog.ProveRecord(int64(size), int64(index), tlog.HashReaderFunc(t.read))
}

// consistency proves that the tree of the first from leaves is a prefix of
// the tree of the first to leaves.
func (t *merkleTree) consistency(from, to uint64) (tlog.TreeProof, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if from == 0 || from > to || int64(to) > t.n {
		return nil, fmt.Errorf("%w: from %d to %d (the tree has %d)", ErrNoProof, from, to, t.n)
	}
	return tlog.ProveTree(int64(to), int64(from), tlog.HashReaderFunc(t.read))
}

// emptyRoot is RFC 6962's hash of the empty tree, SHA-256 of nothing.
var emptyRoot = tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
