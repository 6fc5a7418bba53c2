package eip712

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

const probeType = "Probe(string name,uint64 count,int256 delta,bool flag,address who,bytes32 ref,string[] tags,string key)"

func probeDigest(sep common.Hash, name string, count uint64, delta int64, flag bool, who common.Address, ref common.Hash, tags []string, key string) common.Hash {
	return New(TypeHash(probeType)).String(name).Uint64(count).Int64(delta).Bool(flag).Address(who).Word(ref).Strings(tags).UniqueString(key).Digest(sep)
}

// TestMatchesGoEthereum holds the encoder to go-ethereum's generic one, the
// implementation wallets and verifiers run, for every member kind, both
// domain shapes, negative numbers and empty and repeated strings.
func TestMatchesGoEthereum(t *testing.T) {
	who := common.HexToAddress("0x5A52000000000000000000000000000000000712")
	ref := crypto.Keccak256Hash([]byte("ref"))
	chainID := math.HexOrDecimal256(*big.NewInt(23122))
	domains := []struct {
		ours   Domain
		theirs apitypes.TypedDataDomain
		types  []apitypes.Type
	}{
		{Domain{Name: "ZeroRealm Twin", Version: "1"}, apitypes.TypedDataDomain{Name: "ZeroRealm Twin", Version: "1"},
			[]apitypes.Type{{Name: "name", Type: "string"}, {Name: "version", Type: "string"}}},
		{Domain{Name: "ZeroRealm", Version: "1", ChainID: 23122, VerifyingContract: who},
			apitypes.TypedDataDomain{Name: "ZeroRealm", Version: "1", ChainId: &chainID, VerifyingContract: who.Hex()},
			[]apitypes.Type{{Name: "name", Type: "string"}, {Name: "version", Type: "string"}, {Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"}}},
	}
	cases := []struct {
		name  string
		count uint64
		delta int64
		flag  bool
		tags  []string
		key   string
	}{
		{"press-1", 7, -1_500_000, true, []string{"a", "b"}, "k1"},
		{"press-1", 0, 0, false, nil, ""},
		{"", 1<<64 - 1, -1 << 63, true, []string{""}, strings.Repeat("x", 300)},
		{"press-1", 8, 1<<63 - 1, false, []string{"press-1"}, "press-1"},
	}
	for _, d := range domains {
		for _, c := range cases {
			tags := make([]any, len(c.tags))
			for i, s := range c.tags {
				tags[i] = s
			}
			td := apitypes.TypedData{
				Types: apitypes.Types{
					"EIP712Domain": d.types,
					"Probe": {{Name: "name", Type: "string"}, {Name: "count", Type: "uint64"}, {Name: "delta", Type: "int256"},
						{Name: "flag", Type: "bool"}, {Name: "who", Type: "address"}, {Name: "ref", Type: "bytes32"},
						{Name: "tags", Type: "string[]"}, {Name: "key", Type: "string"}},
				},
				PrimaryType: "Probe",
				Domain:      d.theirs,
				Message: apitypes.TypedDataMessage{
					"name": c.name, "count": new(big.Int).SetUint64(c.count).String(), "delta": big.NewInt(c.delta).String(),
					"flag": c.flag, "who": who.Hex(), "ref": ref.Hex(), "tags": tags, "key": c.key,
				},
			}
			want, _, err := apitypes.TypedDataAndHash(td)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the second time the strings come from the cache.
			for range 2 {
				if got := probeDigest(d.ours.Separator(), c.name, c.count, c.delta, c.flag, who, ref, c.tags, c.key); got != common.BytesToHash(want) {
					t.Fatalf("%s %+v: digest %s, go-ethereum %x", d.ours.TypeString(), c, got, want)
				}
			}
			sep, err := td.HashStruct("EIP712Domain", td.Domain.Map())
			if err != nil {
				t.Fatal(err)
			}
			if d.ours.Separator() != common.BytesToHash(sep) {
				t.Fatalf("separator of %s differs from go-ethereum's", d.ours.TypeString())
			}
			structHash := New(TypeHash(probeType)).String(c.name).Uint64(c.count).Int64(c.delta).Bool(c.flag).Address(who).Word(ref).Strings(c.tags).UniqueString(c.key).Hash()
			if Digest(d.ours.Separator(), structHash) != common.BytesToHash(want) {
				t.Fatal("Digest of Hash differs from Struct.Digest")
			}
		}
	}
}

// TestStringCacheIsBounded fills the cache past its bound with strings of
// forged messages: it empties instead of growing, and hashes stay right.
func TestStringCacheIsBounded(t *testing.T) {
	sep := Domain{Name: "n", Version: "1"}.Separator()
	th := TypeHash("S(string s)")
	for i := range maxCachedStrings * 3 {
		s := "forged-" + big.NewInt(int64(i)).String()
		if got, want := New(th).String(s).Hash(), crypto.Keccak256Hash(th[:], crypto.Keccak256([]byte(s))); got != want {
			t.Fatalf("hash of %q = %s, want %s", s, got, want)
		}
	}
	stringHashes.mu.RLock()
	n := len(stringHashes.m)
	stringHashes.mu.RUnlock()
	if n > maxCachedStrings {
		t.Fatalf("cache holds %d strings, bound %d", n, maxCachedStrings)
	}
	_ = New(th).String("x").Digest(sep)
}

func BenchmarkStruct(b *testing.B) {
	sep := Domain{Name: "ZeroRealm Twin", Version: "1"}.Separator()
	th := TypeHash(probeType)
	who := common.HexToAddress("0x01")
	tags := []string{"avatar-9"}
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		n++
		_ = New(th).String("press-1").Uint64(n).Int64(-5).Bool(true).Address(who).Word(sep).Strings(tags).UniqueString("idem").Digest(sep)
	}
}
