package clustercast

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeAck: a node's acknowledgement of a notice arrives over NATS,
// where anyone who reaches it may publish. The decoder refuses what is not
// exactly one acknowledgement naming a node, never panics, and what it
// accepts reads back the same once encoded as a node encodes it.
func FuzzDecodeAck(f *testing.F) {
	good, _ := json.Marshal(Ack{Node: "realm-a", Denied: 3})
	f.Add(good)
	f.Add([]byte(`{"node":"realm-a","denied":3,"denied":4}`))
	f.Add([]byte(`{"node":"","denied":0}`))
	f.Add([]byte(`{"node":"realm-a"} {}`))
	f.Add([]byte(`{"node":"realm-a","extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAck(data)
		if err != nil {
			return
		}
		if a.Node == "" {
			t.Fatalf("DecodeAck(%q) accepted an acknowledgement naming no node", data)
		}
		enc, _ := json.Marshal(a)
		again, err := DecodeAck(enc)
		if err != nil || again != a {
			t.Fatalf("DecodeAck(%q) = %+v, which reads back as %+v (%v)", data, a, again, err)
		}
	})
}
