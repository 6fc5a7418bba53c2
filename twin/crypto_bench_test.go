package twin

import (
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkSecp256k1 compares the operations a gated command pays for:
// signing, recovery, and verification against a known public key.
func BenchmarkSecp256k1(b *testing.B) {
	s, err := GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	digest := crypto.Keccak256([]byte("grant"))
	sig, _ := crypto.Sign(digest, s.key)
	pub := crypto.FromECDSAPub(&s.key.PublicKey)
	b.Run("sign", func(b *testing.B) {
		for range b.N {
			_, _ = crypto.Sign(digest, s.key)
		}
	})
	b.Run("ecrecover", func(b *testing.B) {
		for range b.N {
			_, _ = crypto.Ecrecover(digest, sig)
		}
	})
	b.Run("verify", func(b *testing.B) {
		for range b.N {
			if !crypto.VerifySignature(pub, digest, sig[:64]) {
				b.Fatal("bad")
			}
		}
	})
	b.Run("keccak", func(b *testing.B) {
		for range b.N {
			_ = crypto.Keccak256(digest)
		}
	})
}
