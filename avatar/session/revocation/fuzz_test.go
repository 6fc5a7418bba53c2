package revocation

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
)

// FuzzDecodeNotice: whatever arrives on the revocation subject (after its
// tag verified, but from a node that may be compromised), decoding returns
// a notice or ErrMalformed, never panics, and a notice it accepts encodes
// again.
func FuzzDecodeNotice(f *testing.F) {
	good, _ := encodeNotice("realm-a", []session.Revocation{{SessionID: "00112233445566778899aabbccddeeff", Avatar: "ada", Reason: "signed out", At: time.Unix(1800000000, 0), Expires: time.Unix(1800003600, 0)}})
	f.Add(good)
	f.Add([]byte(`{"node":"a","sessions":[]}`))
	f.Add([]byte(`{"node":"a","sessions":[{"id":"x"}],"node":"b"}`))
	f.Add([]byte(`{"node":"a","sessions":[{"id":"x","extra":1}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := decodeNotice(data)
		if err != nil {
			return
		}
		if n.Node == "" || len(n.Sessions) == 0 || len(n.Sessions) > maxNoticeSessions {
			t.Fatalf("accepted %+v", n)
		}
		if _, err := encodeNotice(n.Node, n.revocations()); err != nil {
			t.Fatalf("accepted notice does not encode: %v", err)
		}
		_, _ = decodeAck(data)
	})
}
