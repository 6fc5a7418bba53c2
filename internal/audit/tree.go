package audit

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// merkleTree is the RFC 6962 Merkle tree over one chain's events (leaf: an
// event's stored bytes), kept as tlog's stored hashes and grown one leaf at
// a time, so a checkpoint of a long chain costs O(log n) new hashes rather
// than a pass over the whole chain. It is safe for one appender and many
// readers.
//
// The stored hashes (about two per event, 64 bytes) are kept in memory, or,
// for a node's own long-lived tree, in a file (newFileTree): then memory
// holds only the hashes of the tree's maximal complete subtrees (its
// compact range, O(log n)), which are all that appending a leaf and
// computing the tree's root read; proofs read the file.
type merkleTree struct {
	mu     sync.RWMutex
	n      int64       // leaves
	count  int64       // stored hashes
	hashes []tlog.Hash // every stored hash, in tlog's storage order, when file is nil

	file    *os.File    // every stored hash at index*HashSize, when set, up to flushed
	flushed int64       // stored hashes written to file
	pending []tlog.Hash // stored hashes flushed..count, written in batches
	edge    []edgeHash  // with file: the compact range's stored hashes
	spare   []edgeHash
	buf     []byte
}

// edgeHash is a stored hash of the compact range, with its storage index.
type edgeHash struct {
	x int64
	h tlog.Hash
}

// flushEvery is how many stored hashes a file-backed tree writes at once
// (256 KiB): one write per few thousand events rather than one per event.
const flushEvery = 8192

// newFileTree is an empty tree whose stored hashes go to the file at
// path, created or truncated: the file is a cache of the chain, rebuilt
// from it whenever the tree is, so it needs no sync.
func newFileTree(path string) (*merkleTree, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: tree hashes: %w", err)
	}
	return &merkleTree{file: f}, nil
}

// close releases the file of a file-backed tree.
func (t *merkleTree) close() error {
	if t.file == nil {
		return nil
	}
	return t.file.Close()
}

// read is the tree's tlog.HashReader; the caller holds mu.
func (t *merkleTree) read(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, err := t.hashAt(x)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// hashAt is the stored hash at index x; the caller holds mu.
func (t *merkleTree) hashAt(x int64) (tlog.Hash, error) {
	switch {
	case x < 0 || x >= t.count:
		return tlog.Hash{}, fmt.Errorf("audit: tree hash %d not stored (%d stored)", x, t.count)
	case t.file == nil:
		return t.hashes[x], nil
	case x >= t.flushed:
		return t.pending[x-t.flushed], nil
	}
	if h, ok := t.edgeHash(x); ok {
		return h, nil
	}
	var h tlog.Hash
	if _, err := t.file.ReadAt(h[:], x*tlog.HashSize); err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: read tree hash %d: %w", x, err)
	}
	return h, nil
}

func (t *merkleTree) edgeHash(x int64) (tlog.Hash, bool) {
	for _, e := range t.edge {
		if e.x == x {
			return e.h, true
		}
	}
	return tlog.Hash{}, false
}

// append adds one leaf. It fails only if the tree cannot read or write its
// own hashes.
func (t *merkleTree) append(leaf []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	hs, err := tlog.StoredHashes(t.n, leaf, tlog.HashReaderFunc(t.read))
	if err != nil {
		return fmt.Errorf("audit: merkle tree: %w", err)
	}
	if t.file == nil {
		t.hashes = append(t.hashes, hs...)
		t.count += int64(len(hs))
		t.n++
		return nil
	}
	t.pending = append(t.pending, hs...)
	t.count += int64(len(hs))
	t.n++
	// Keep the compact range of the grown tree: its maximal complete
	// subtrees, one per bit of n, whose roots were stored by this append
	// or kept from the last one.
	keep := t.spare[:0]
	start := int64(0)
	for level := 62; level >= 0; level-- {
		if t.n&(1<<level) == 0 {
			continue
		}
		x := tlog.StoredHashIndex(level, start>>level)
		h, err := t.hashAt(x)
		if err != nil {
			return err
		}
		keep = append(keep, edgeHash{x, h})
		start += 1 << level
	}
	t.spare, t.edge = t.edge, keep
	if len(t.pending) >= flushEvery {
		return t.flush()
	}
	return nil
}

// flush writes the pending stored hashes to the file; the caller holds mu.
func (t *merkleTree) flush() error {
	t.buf = t.buf[:0]
	for _, h := range t.pending {
		t.buf = append(t.buf, h[:]...)
	}
	if _, err := t.file.WriteAt(t.buf, t.flushed*tlog.HashSize); err != nil {
		return fmt.Errorf("audit: write tree hashes: %w", err)
	}
	t.flushed += int64(len(t.pending))
	t.pending = t.pending[:0]
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
		return tlog.Hash{}, noProof("size %d is beyond the tree's %d", n, t.n)
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
		return nil, noProof("index %d in size %d (the tree has %d)", index, size, t.n)
	}
	return tlog.ProveRecord(int64(size), int64(index), tlog.HashReaderFunc(t.read))
}

// consistency proves that the tree of the first from leaves is a prefix of
// the tree of the first to leaves.
func (t *merkleTree) consistency(from, to uint64) (tlog.TreeProof, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if from == 0 || from > to || int64(to) > t.n {
		return nil, noProof("from %d to %d (the tree has %d)", from, to, t.n)
	}
	return tlog.ProveTree(int64(to), int64(from), tlog.HashReaderFunc(t.read))
}

// emptyRoot is RFC 6962's hash of the empty tree, SHA-256 of nothing.
var emptyRoot = tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
