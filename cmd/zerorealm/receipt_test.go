package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/assets"
)

// signedReceipts builds a chain of n receipts and a checkpoint over them,
// as a realm node would, with key.
func signedReceipts(t *testing.T, n int) ([]assets.InclusionProof, *assets.Scheme, common.Address) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	sc := assets.NewScheme(assets.Domain{})
	var rs []assets.SignedReceipt
	var prev common.Hash
	for i := range n {
		r := assets.Receipt{Intent: crypto.Keccak256Hash([]byte{byte(i)}), Sequence: uint64(10 + i), Chain: "node-a", Index: uint64(i), Previous: prev, Time: 1_800_000_000}
		d := sc.ReceiptDigest(&r)
		sig, _ := assets.Sign(d, key)
		rs = append(rs, assets.SignedReceipt{Receipt: r, Digest: d, Signature: sig, Signer: crypto.PubkeyToAddress(key.PublicKey)})
		prev = d
	}
	leaves := make([]common.Hash, n)
	for i, r := range rs {
		leaves[i] = r.Digest
	}
	cp := assets.Checkpoint{Chain: "node-a", First: 0, Count: uint64(n), Root: assets.MerkleRoot(leaves), Time: 1_800_000_001}
	cd := sc.CheckpointDigest(&cp)
	csig, _ := assets.Sign(cd, key)
	scp := assets.SignedCheckpoint{Checkpoint: cp, Digest: cd, Signature: csig, Signer: crypto.PubkeyToAddress(key.PublicKey)}
	var proofs []assets.InclusionProof
	for i, r := range rs {
		path, _ := assets.MerkleProof(leaves, i)
		proofs = append(proofs, assets.InclusionProof{Receipt: r, Checkpoint: scp, LeafIndex: uint64(i), Path: path})
	}
	return proofs, sc, crypto.PubkeyToAddress(key.PublicKey)
}

func TestReceiptVerify(t *testing.T) {
	proofs, sc, signer := signedReceipts(t, 5)
	dir := t.TempDir()
	write := func(name string, v any) string {
		data, _ := json.Marshal(v)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := sc.ReceiptDocument(proofs[2].Receipt)
	withProof := sc.ProofDocument(proofs[3])
	tampered := sc.ProofDocument(proofs[1])
	tampered.Receipt.Message["sequence"] = "999"
	tamperedBare := tampered
	tamperedBare.Digest = ""
	badProof := sc.ProofDocument(proofs[4])
	badProof.Proof.LeafIndex = 0
	tests := []struct {
		name    string
		file    string
		signers []string
		want    string // in the output, or in the error when wantErr
		wantErr bool
	}{
		{"receipt", write("plain.json", plain), nil, "signed by   " + signer.Hex(), false},
		{"trusted signer", write("plain2.json", plain), []string{signer.Hex()}, "signer      trusted", false},
		{"untrusted signer", write("plain3.json", plain), []string{"0x0000000000000000000000000000000000000001"}, "not among the trusted signers", true},
		{"with proof", write("proof.json", withProof), nil, "included in checkpoint", false},
		{"transfer answer", write("answer.json", map[string]any{"digest": "0x00", "receipt": withProof}), nil, "included in checkpoint", false},
		{"tampered receipt", write("tampered.json", tampered), nil, "typed data hashes to", true},
		{"tampered receipt without digest", write("tampered2.json", tamperedBare), []string{signer.Hex()}, "not among the trusted signers", true},
		{"wrong leaf index", write("badproof.json", badProof), nil, "does not lead to the checkpoint's root", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := os.ReadFile(tc.file)
			var out bytes.Buffer
			err := verifyReceipt(&out, data, tc.signers)
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if (err != nil) != tc.wantErr || !strings.Contains(got, tc.want) {
				t.Fatalf("verifyReceipt(%s) = %q, %v; want %q (error %v)", tc.name, out.String(), err, tc.want, tc.wantErr)
			}
		})
	}
}
