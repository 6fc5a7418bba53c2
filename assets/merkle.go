package assets

import (
	"errors"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The Merkle tree of a checkpoint follows RFC 6962 (Certificate
// Transparency) with keccak256: leaves are hashed with a 0x00 prefix and
// inner nodes with 0x01, so a leaf can never be passed off as a node, and
// trees of any size are allowed (the left subtree is the largest power of
// two below the size).

func leafHash(receiptDigest common.Hash) common.Hash {
	var buf [33]byte
	copy(buf[1:], receiptDigest[:])
	return crypto.Keccak256Hash(buf[:])
}

func nodeHash(l, r common.Hash) common.Hash {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return crypto.Keccak256Hash(buf[:])
}

// MerkleRoot is the root over the receipt digests, in chain order.
func MerkleRoot(leaves []common.Hash) common.Hash {
	hashed := make([]common.Hash, len(leaves))
	for i, l := range leaves {
		hashed[i] = leafHash(l)
	}
	return subtreeRoot(hashed)
}

func subtreeRoot(h []common.Hash) common.Hash {
	switch len(h) {
	case 0:
		return crypto.Keccak256Hash(nil)
	case 1:
		return h[0]
	}
	k := splitPoint(len(h))
	return nodeHash(subtreeRoot(h[:k]), subtreeRoot(h[k:]))
}

// splitPoint is the largest power of two below n (n >= 2).
func splitPoint(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// MerkleProof is the audit path of leaf index in the tree over leaves.
func MerkleProof(leaves []common.Hash, index int) ([]common.Hash, error) {
	if index < 0 || index >= len(leaves) {
		return nil, errors.New("assets: proof index out of range")
	}
	hashed := make([]common.Hash, len(leaves))
	for i, l := range leaves {
		hashed[i] = leafHash(l)
	}
	return path(hashed, index), nil
}

func path(h []common.Hash, m int) []common.Hash {
	if len(h) <= 1 {
		return nil
	}
	k := splitPoint(len(h))
	if m < k {
		return append(path(h[:k], m), subtreeRoot(h[k:]))
	}
	return append(path(h[k:], m-k), subtreeRoot(h[:k]))
}

// VerifyInclusion reports whether proof shows that the receipt digest is
// leaf index of a tree of size leaves with the given root (RFC 9162,
// section 2.1.3.2).
func VerifyInclusion(receiptDigest common.Hash, index, size uint64, proof []common.Hash, root common.Hash) bool {
	if index >= size {
		return false
	}
	fn, sn := index, size-1
	r := leafHash(receiptDigest)
	for _, p := range proof {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && r == root
}
