package twin

import (
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// benchGrant is a grant as the gateway receives it for every command.
func benchGrant(b *testing.B) []byte {
	b.Helper()
	s, err := GenerateSigner()
	if err != nil {
		b.Fatal(err)
	}
	v := 12.5
	c, err := NewCommand("press-1", "ram", "av_ada", "k1", CommandRequest{Op: OpSet, Value: &v})
	if err != nil {
		b.Fatal(err)
	}
	g := Grant{Twin: c.Twin, Actuator: c.Actuator, Op: c.Op, ValueMicro: c.ValueMicro, Command: c.Hash(), Nonce: 42,
		NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Operator: "av_ada", Session: "s1", Approvers: []string{"av_b"}}
	return s.SignGrant(g).Encode()
}

// BenchmarkDecodeSignedGrant is the gateway's per-command decode with the
// hand-written reader.
func BenchmarkDecodeSignedGrant(b *testing.B) {
	data := benchGrant(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeSignedGrant(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSignedGrantJSONv2 is what go-json-experiment/json costs
// for the same bytes with unknown names refused (duplicates and invalid
// UTF-8 it refuses by default). It does less than the reader (no check
// that every field is present, no integer-only numbers), so it is a lower
// bound on a replacement's cost; the reader stays while this is slower.
func BenchmarkDecodeSignedGrantJSONv2(b *testing.B) {
	data := benchGrant(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var w signedGrantWire
		if err := jsonv2.Unmarshal(data, &w, jsonv2.RejectUnknownMembers(true)); err != nil {
			b.Fatal(err)
		}
		if _, err := ParseSignature(w.Signature); err != nil {
			b.Fatal(err)
		}
	}
}
