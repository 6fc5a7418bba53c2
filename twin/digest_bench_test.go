package twin

import "testing"

// BenchmarkDigests measures the EIP-712 hashing of the messages a gated
// command signs and checks: the command, its grant and its acknowledgement.
func BenchmarkDigests(b *testing.B) {
	c := Command{Twin: "press-1", Actuator: "ram", Op: "set", ValueMicro: 1_500_000, Operator: "avatar-1234", Key: "idem-key-0001"}
	g := Grant{Twin: "press-1", Actuator: "ram", Op: "set", ValueMicro: 1_500_000, Nonce: 7, NotBefore: 1, Expiry: 2,
		Operator: "avatar-1234", Session: "session-5678", Approvers: []string{"avatar-9"}}
	a := Ack{Twin: "press-1", Actuator: "ram", Nonce: 7, Result: "applied", ValueMicro: 1_500_000, TargetMicro: 1_500_000, At: 3}
	b.Run("command", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Hash()
		}
	})
	b.Run("grant", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			g.Nonce++
			_ = g.Digest()
		}
	})
	b.Run("ack", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a.Nonce++
			_ = a.Digest()
		}
	})
}
