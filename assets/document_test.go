package assets

import (
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestAppendReceiptJSON checks the hand-built encoding against
// json.Marshal of the same document, byte for byte.
func TestAppendReceiptJSON(t *testing.T) {
	key, _ := crypto.GenerateKey()
	for _, tc := range []struct {
		name   string
		domain Domain
		chain  string
		time   uint64
	}{
		{"default domain", Domain{}, "node-1", 1_700_000_000},
		{"other domain", Domain{Name: "Other <&>", Version: "2", ChainID: 1, VerifyingContract: alice}, "n_2", 0},
		{"chain needing escapes", Domain{}, "a\"b<c>\u00e9", 1 << 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScheme(tc.domain)
			rc := Receipt{Intent: common.HexToHash("0xabc"), Sequence: 42, Chain: tc.chain, Index: 7, Previous: common.HexToHash("0xdef"), Time: tc.time}
			d := s.ReceiptDigest(&rc)
			sig, err := Sign(d, key)
			if err != nil {
				t.Fatal(err)
			}
			r := SignedReceipt{Receipt: rc, Digest: d, Signature: sig, Signer: crypto.PubkeyToAddress(key.PublicKey)}
			want, err := json.Marshal(s.ReceiptDocument(r))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.AppendReceiptJSON(nil, &r); string(got) != string(want) {
				t.Fatalf("AppendReceiptJSON = %s, want %s", got, want)
			}
		})
	}
}

func BenchmarkReceiptDocument(b *testing.B) {
	key, _ := crypto.GenerateKey()
	s := NewScheme(Domain{})
	rc := Receipt{Intent: common.HexToHash("0xabc"), Sequence: 42, Chain: "node-1", Index: 7, Previous: common.HexToHash("0xdef"), Time: 1_700_000_000}
	d := s.ReceiptDigest(&rc)
	sig, _ := Sign(d, key)
	r := SignedReceipt{Receipt: rc, Digest: d, Signature: sig, Signer: crypto.PubkeyToAddress(key.PublicKey)}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(s.ReceiptDocument(r))
		}
	})
	b.Run("AppendReceiptJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			buf = s.AppendReceiptJSON(buf[:0], &r)
		}
	})
}
