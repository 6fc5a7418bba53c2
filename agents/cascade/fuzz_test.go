package cascade

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
)

// FuzzDecodeNotice: whatever arrives on the subject (after its tag
// verified, but from a node that may be compromised), decoding returns a
// valid revocation or ErrMalformed, never panics, and what it accepts
// encodes again.
func FuzzDecodeNotice(f *testing.F) {
	good, _ := encodeNotice("realm-a", agents.Revocation{Kind: agents.KindDelegation, ID: "dg_0123456789abcdef0123456789abcdef", By: "av_x", Reason: "revoked by its owner", At: time.Unix(1800000000, 0)})
	f.Add(good)
	owner, _ := encodeNotice("realm-a", agents.Revocation{Kind: agents.KindOwner, ID: "av_0123456789abcdef0123456789abcdef", By: "av_x", Reason: "signed out everywhere", At: time.Unix(1800000000, 0)})
	f.Add(owner)
	f.Add([]byte(`{"node":"a","revocation":{"kind":"agent","id":"ag_0123456789abcdef0123456789abcdef","by":"","reason":"","at":"2027-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"node":"a","revocation":{"kind":"delegation","id":"dg_0123456789abcdef0123456789abcdef","by":"","reason":"","at":"0001-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"node":"a","node":"b"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, rev, err := decodeNotice(data)
		if err != nil {
			return
		}
		if n.Node == "" || rev.Validate() != nil {
			t.Fatalf("accepted %+v %+v", n, rev)
		}
		if _, err := encodeNotice(n.Node, rev); err != nil {
			t.Fatalf("accepted notice does not encode: %v", err)
		}
	})
}
