package market

import (
	"context"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestSignDigestChecksWhatTheSignerReturns feeds signDigest what real
// signers return, good and bad: v as 0/1 or 27/28 is accepted, and a
// signature of the wrong length, with a high s, or by another key is
// refused before it could reach a realm.
func TestSignDigestChecksWhatTheSignerReturns(t *testing.T) {
	ctx := context.Background()
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	address := crypto.PubkeyToAddress(key.PublicKey)
	digest := crypto.Keccak256Hash([]byte("a transfer"))
	good, _ := crypto.Sign(digest[:], key)
	walletStyle := append([]byte(nil), good...)
	walletStyle[64] += 27
	// The same signature with s negated: valid for the curve, refused by
	// Ethereum as malleable.
	n := crypto.S256().Params().N
	highS := append([]byte(nil), good...)
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(good[32:64]))
	s.FillBytes(highS[32:64])
	highS[64] ^= 1
	byOther, _ := crypto.Sign(digest[:], other)

	fixed := func(sig []byte, err error) Signer {
		return SignerFunc(address, func(context.Context, common.Hash) ([]byte, error) { return sig, err })
	}
	cases := []struct {
		name   string
		signer Signer
		want   error // nil: accepted
	}{
		{"raw key", KeySigner(key), nil},
		{"v 27 or 28, as wallets", fixed(walletStyle, nil), nil},
		{"too short", fixed(good[:64], nil), ErrBadSignature},
		{"high s", fixed(highS, nil), ErrBadSignature},
		{"v out of range", fixed(append(append([]byte(nil), good[:64]...), 5), nil), ErrBadSignature},
		{"another key's", fixed(byOther, nil), ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := signDigest(ctx, tc.signer, digest)
			if !errors.Is(err, tc.want) {
				t.Fatalf("signDigest = %q, %v; want %v", sig, err, tc.want)
			}
			if tc.want == nil && sig != "0x"+common.Bytes2Hex(walletStyle) {
				t.Fatalf("signature %s, want %x (v 27 or 28)", sig, walletStyle)
			}
		})
	}
	failing := errors.New("device unplugged")
	if _, err := signDigest(ctx, fixed(nil, failing), digest); !errors.Is(err, failing) {
		t.Fatalf("a signer's own error = %v, want it wrapped", err)
	}
}

// TestSignPayloadRefusesADigestThatIsNotTheTypedData's: a realm that
// shows one message and sends the digest of another gets no signature.
func TestSignPayloadRefusesADigestThatIsNotTheTypedDatas(t *testing.T) {
	key, _ := crypto.GenerateKey()
	typed := []byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"}],"Note":[{"name":"text","type":"string"}]},` +
		`"primaryType":"Note","domain":{"name":"test"},"message":{"text":"hello"}}`)
	h, err := HashTypedData(typed)
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	counting := SignerFunc(crypto.PubkeyToAddress(key.PublicKey), func(ctx context.Context, d common.Hash) ([]byte, error) {
		asked++
		return KeySigner(key).SignDigest(ctx, d)
	})
	if _, err := SignPayload(context.Background(), counting, Payload{TypedData: typed, Digest: h.Hex()}); err != nil {
		t.Fatalf("SignPayload of a true payload: %v", err)
	}
	other := crypto.Keccak256Hash([]byte("something else"))
	if _, err := SignPayload(context.Background(), counting, Payload{TypedData: typed, Digest: other.Hex()}); err == nil {
		t.Fatal("SignPayload signed a payload whose digest is not its typed data's")
	}
	if asked != 1 {
		t.Fatalf("the signer was asked %d times, want once (never for the false payload)", asked)
	}
}
