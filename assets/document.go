package assets

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
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

// receiptHead encodes what every receipt document of the scheme starts
// with, up to the message's first key, exactly as json.Marshal would.
func receiptHead(s *Scheme) []byte {
	td := s.typed("Receipt", receiptFields, nil, nil)
	types, _ := json.Marshal(td.Types)
	domain, _ := json.Marshal(td.Domain)
	head := append([]byte(`{"receipt":{"types":`), types...)
	head = append(head, `,"primaryType":"Receipt","domain":`...)
	head = append(head, domain...)
	return append(head, `,"message":{`...)
}

// AppendReceiptJSON appends the compact JSON encoding of
// ReceiptDocument(r) to dst: the bytes json.Marshal produces (keys of the
// message in sorted order, as for a map), built without maps or reflection
// because every transfer answers with one.
func (s *Scheme) AppendReceiptJSON(dst []byte, r *SignedReceipt) []byte {
	rc := &r.Receipt
	dst = append(dst, s.receiptHead...)
	dst = append(dst, `"chain":`...)
	dst = appendJSONString(dst, rc.Chain)
	dst = append(dst, `,"index":"`...)
	dst = strconv.AppendUint(dst, rc.Index, 10)
	dst = append(dst, `","intent":"`...)
	dst = appendHex(dst, rc.Intent[:])
	dst = append(dst, `","previous":"`...)
	dst = appendHex(dst, rc.Previous[:])
	dst = append(dst, `","sequence":"`...)
	dst = strconv.AppendUint(dst, rc.Sequence, 10)
	dst = append(dst, `","time":"`...)
	dst = strconv.AppendUint(dst, rc.Time, 10)
	dst = append(dst, `"}},"digest":"`...)
	dst = appendHex(dst, r.Digest[:])
	dst = append(dst, `","signature":"`...)
	dst = appendHex(dst, r.Signature[:])
	dst = append(dst, `","signer":"`...)
	dst = append(dst, r.Signer.Hex()...)
	dst = append(dst, `","time":"`...)
	dst = time.Unix(int64(min(rc.Time, 1<<40)), 0).UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, `"}`...)
}

func appendHex(dst, b []byte) []byte {
	dst = append(dst, "0x"...)
	return hex.AppendEncode(dst, b)
}

// appendJSONString quotes s as encoding/json does; the names it sees
// (node names) need no escaping, which is the fast path.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
