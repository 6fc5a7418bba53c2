package ethsig

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestSignParseRecover(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	digest := common.BytesToHash(crypto.Keccak256([]byte("a transfer")))
	sig, err := Sign(digest, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(sig.String())
	if err != nil || parsed != sig {
		t.Fatalf("Parse(String()) = %x, %v; want the signature back", parsed, err)
	}
	got, err := Recover(digest, parsed)
	if err != nil || got != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("Recover = %s, %v; want the signer", got.Hex(), err)
	}

	// The malleated twin: s' = n - s, v flipped. Ecrecover accepts it.
	high := sig
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(crypto.S256().Params().N, s).FillBytes(high[32:64])
	high[64] ^= 27 ^ 28
	if _, err := Parse(high.String()); !errors.Is(err, ErrHighS) {
		t.Fatalf("Parse(high-s) = %v, want ErrHighS", err)
	}
	if _, err := Recover(digest, high); !errors.Is(err, ErrHighS) {
		t.Fatalf("Recover(high-s) = %v, want ErrHighS", err)
	}
}

func TestParseRefusesMalformed(t *testing.T) {
	cases := map[string]string{
		"short":     "0x1234",
		"no prefix": strings.Repeat("ab", 65),
		"not hex":   "0x" + strings.Repeat("zz", 65),
		"v = 0":     "0x" + strings.Repeat("11", 64) + "00",
		"zero r s":  "0x" + strings.Repeat("00", 64) + "1b",
	}
	for name, in := range cases {
		if _, err := Parse(in); !errors.Is(err, ErrEncoding) {
			t.Errorf("Parse(%s) = %v, want ErrEncoding", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0x" + strings.Repeat("11", 64) + "1b")
	f.Add("0x")
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := Parse(s)
		if err == nil && sig.String() != strings.ToLower("0x"+s[2:]) {
			t.Fatalf("Parse(%q) accepted but prints %s", s, sig)
		}
	})
}
