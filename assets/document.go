package assets

import (
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// ReceiptDocument is a receipt as the API serves it and as
// `zerorealm receipt verify` reads it: standard eth_signTypedData_v4 data
// and a 65-byte signature, so any EIP-712 tool can check it without the
// realm.
type ReceiptDocument struct {
	Receipt   TypedData      `json:"receipt"`
	Digest    string         `json:"digest"`
	Signature string         `json:"signature"`
	Signer    string         `json:"signer"`
	Time      string         `json:"time"`
	Proof     *ProofDocument `json:"proof,omitempty"`
}

// ProofDocument shows a receipt's inclusion in a signed checkpoint.
type ProofDocument struct {
	Checkpoint          TypedData `json:"checkpoint"`
	CheckpointDigest    string    `json:"checkpoint_digest"`
	CheckpointSignature string    `json:"checkpoint_signature"`
	CheckpointSigner    string    `json:"checkpoint_signer"`
	LeafIndex           uint64    `json:"leaf_index"`
	Path                []string  `json:"path"`
}

// CheckpointDocument is a signed checkpoint as the API serves it.
type CheckpointDocument struct {
	Checkpoint TypedData `json:"checkpoint"`
	Digest     string    `json:"digest"`
	Signature  string    `json:"signature"`
	Signer     string    `json:"signer"`
	Time       string    `json:"time"`
}

func rfc3339(unix uint64) string {
	return time.Unix(int64(min(unix, 1<<40)), 0).UTC().Format(time.RFC3339)
}

// ReceiptDocument renders r.
func (s *Scheme) ReceiptDocument(r SignedReceipt) ReceiptDocument {
	return ReceiptDocument{
		Receipt: s.ReceiptTypedData(&r.Receipt), Digest: r.Digest.Hex(),
		Signature: r.Signature.String(), Signer: r.Signer.Hex(), Time: rfc3339(r.Receipt.Time),
	}
}

// CheckpointDocument renders c.
func (s *Scheme) CheckpointDocument(c SignedCheckpoint) CheckpointDocument {
	return CheckpointDocument{
		Checkpoint: s.CheckpointTypedData(&c.Checkpoint), Digest: c.Digest.Hex(),
		Signature: c.Signature.String(), Signer: c.Signer.Hex(), Time: rfc3339(c.Checkpoint.Time),
	}
}

// ProofDocument renders a receipt with its inclusion proof.
func (s *Scheme) ProofDocument(p InclusionProof) ReceiptDocument {
	doc := s.ReceiptDocument(p.Receipt)
	path := make([]string, len(p.Path))
	for i, h := range p.Path {
		path[i] = h.Hex()
	}
	doc.Proof = &ProofDocument{
		Checkpoint: s.CheckpointTypedData(&p.Checkpoint.Checkpoint), CheckpointDigest: p.Checkpoint.Digest.Hex(),
		CheckpointSignature: p.Checkpoint.Signature.String(), CheckpointSigner: p.Checkpoint.Signer.Hex(),
		LeafIndex: p.LeafIndex, Path: path,
	}
	return doc
}

// HashList parses 0x hex hashes, as in a proof's path.
func HashList(hexes []string) ([]common.Hash, bool) {
	out := make([]common.Hash, len(hexes))
	for i, h := range hexes {
		if len(h) != 66 || h[:2] != "0x" {
			return nil, false
		}
		b := common.FromHex(h)
		if len(b) != 32 {
			return nil, false
		}
		out[i] = common.BytesToHash(b)
	}
	return out, true
}
