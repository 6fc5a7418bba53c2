package assets

import (
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

var (
	alice = common.HexToAddress("0x00000000000000000000000000000000000a11ce")
	bob   = common.HexToAddress("0x0000000000000000000000000000000000000b0b")
)

// gethDigest hashes typed data with go-ethereum's own EIP-712 code, after a
// JSON round trip, exactly as a wallet would receive the payload.
func gethDigest(t *testing.T, td TypedData) common.Hash {
	t.Helper()
	data, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	var g apitypes.TypedData
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("apitypes cannot read %s: %v", data, err)
	}
	h, _, err := apitypes.TypedDataAndHash(g)
	if err != nil {
		t.Fatalf("apitypes.TypedDataAndHash(%s): %v", data, err)
	}
	return common.BytesToHash(h)
}

func TestDigestsMatchGoEthereum(t *testing.T) {
	transfer := Transfer{Collection: "credits", Amount: 250, From: alice, To: bob, Nonce: 7, Deadline: 1_900_000_000}
	item := Transfer{Collection: "badges", AssetID: "first-shift", Amount: 1, From: bob, To: alice, Nonce: 1<<64 - 1, Deadline: 1}
	receipt := Receipt{Intent: common.HexToHash("0xabc"), Sequence: 42, Chain: "node-a", Index: 3, Previous: common.HexToHash("0xdef"), Time: 1_800_000_000}
	cp := Checkpoint{Chain: "node-a", First: 0, Count: 4, Root: common.HexToHash("0x1234"), Time: 1_800_000_001}
	link := LinkWallet{Avatar: "av_0123", Wallet: alice, Deadline: 99}
	cancel := CancelIntents{Owner: alice, NonceFloor: 10, Deadline: 100}
	for _, sc := range []*Scheme{NewScheme(Domain{}), NewScheme(Domain{ChainID: 1, Name: "Other", Version: "2", VerifyingContract: bob})} {
		tests := []struct {
			name string
			ours common.Hash
			td   TypedData
		}{
			{"Transfer fungible", sc.TransferDigest(&transfer), sc.TransferTypedData(&transfer)},
			{"Transfer unique", sc.TransferDigest(&item), sc.TransferTypedData(&item)},
			{"Trade", sc.TradeDigest(&Trade{Give: transfer, Take: item}), sc.TradeTypedData(&Trade{Give: transfer, Take: item})},
			{"Receipt", sc.ReceiptDigest(&receipt), sc.ReceiptTypedData(&receipt)},
			{"Checkpoint", sc.CheckpointDigest(&cp), sc.CheckpointTypedData(&cp)},
			{"LinkWallet", sc.LinkDigest(&link), sc.LinkTypedData(&link)},
			{"CancelIntents", sc.CancelDigest(&cancel), sc.CancelTypedData(&cancel)},
		}
		for _, tc := range tests {
			t.Run(tc.name+"/chain "+sc.domain.Name, func(t *testing.T) {
				if got := gethDigest(t, tc.td); got != tc.ours {
					t.Errorf("apitypes digest = %s, ours = %s", got.Hex(), tc.ours.Hex())
				}
			})
		}
	}
}

func TestDomainChangesDigest(t *testing.T) {
	tr := Transfer{Collection: "credits", Amount: 1, From: alice, To: bob, Deadline: 1}
	a := NewScheme(Domain{}).TransferDigest(&tr)
	b := NewScheme(Domain{ChainID: 1}).TransferDigest(&tr)
	if a == b {
		t.Fatalf("TransferDigest is %s on two chains, want different digests", a.Hex())
	}
}

func TestSignatureChecks(t *testing.T) {
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	d := crypto.Keccak256Hash([]byte("x"))
	sig, err := Sign(d, key)
	if err != nil {
		t.Fatal(err)
	}
	// The same signature with s' = n - s and v flipped recovers the same
	// key: the malleated twin that must be refused.
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	high := sig
	new(big.Int).Sub(n, s).FillBytes(high[32:64])
	high[64] = 55 - high[64] // 27 <-> 28
	short := sig.String()[:100]
	badV := sig
	badV[64] = 1
	tests := []struct {
		name string
		in   string
		want Reason
	}{
		{"short", short, ReasonSignatureEncoding},
		{"not hex", "0x" + string(make([]byte, 130)), ReasonSignatureEncoding},
		{"v 1", badV.String(), ReasonSignatureEncoding},
		{"high s", high.String(), ReasonHighS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSignature(tc.in)
			re, ok := err.(*RejectError)
			if !ok || re.Reason != tc.want {
				t.Fatalf("ParseSignature(%q) = %v, want reason %q", tc.in, err, tc.want)
			}
		})
	}
	parsed, err := ParseSignature(sig.String())
	if err != nil || parsed != sig {
		t.Fatalf("ParseSignature(%s) = %v, %v; want the signature back", sig, parsed, err)
	}
	if err := verifySigner(d, sig, crypto.PubkeyToAddress(key.PublicKey), "x"); err != nil {
		t.Fatalf("verifySigner(own key) = %v, want nil", err)
	}
	err = verifySigner(d, sig, crypto.PubkeyToAddress(other.PublicKey), "x")
	if re, ok := err.(*RejectError); !ok || re.Reason != ReasonWrongSigner {
		t.Fatalf("verifySigner(other key) = %v, want %s", err, ReasonWrongSigner)
	}
}

func TestMerkleProofs(t *testing.T) {
	for size := 1; size <= 33; size++ {
		leaves := make([]common.Hash, size)
		for i := range leaves {
			leaves[i] = crypto.Keccak256Hash([]byte{byte(i), byte(size)})
		}
		root := MerkleRoot(leaves)
		for i := range leaves {
			p, err := MerkleProof(leaves, i)
			if err != nil {
				t.Fatal(err)
			}
			if !VerifyInclusion(leaves[i], uint64(i), uint64(size), p, root) {
				t.Fatalf("VerifyInclusion(leaf %d of %d) = false, want true", i, size)
			}
			if VerifyInclusion(leaves[(i+1)%size], uint64(i), uint64(size), p, root) && size > 1 {
				t.Fatalf("VerifyInclusion(wrong leaf at %d of %d) = true, want false", i, size)
			}
			if size > 1 && VerifyInclusion(leaves[i], uint64((i+1)%size), uint64(size), p, root) {
				t.Fatalf("VerifyInclusion(leaf %d at index %d of %d) = true, want false", i, (i+1)%size, size)
			}
		}
	}
}

func BenchmarkCrypto(b *testing.B) {
	key, _ := crypto.GenerateKey()
	sc := NewScheme(Domain{})
	tr := Transfer{Collection: "credits", AssetID: "", Amount: 5, From: alice, To: bob, Nonce: 1, Deadline: 2}
	d := sc.TransferDigest(&tr)
	sig, _ := Sign(d, key)
	b.Run("TransferDigest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tr.Nonce++
			sc.TransferDigest(&tr)
		}
	})
	b.Run("Recover", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Recover(d, sig)
		}
	})
	b.Run("Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Sign(d, key)
		}
	})
	b.Run("RecoverPlusSign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Recover(d, sig)
			_, _ = Sign(d, key)
		}
	})
}
