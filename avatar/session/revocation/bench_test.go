package revocation

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

// BenchmarkRevokeToRefusal measures a revocation from Revoke's call on node
// a until node b refuses the session, through one NATS server on
// loopback: the local denial, the authenticated notice, b's denial and
// its acknowledgement. b denies before it acknowledges, so when Revoke
// returns with b told, b refuses; each iteration checks it. Storing is
// left out (the store function does nothing): it is what this path does
// not wait for.
func BenchmarkRevokeToRefusal(b *testing.B) {
	ctx := context.Background()
	srv := natstest.RunServer(b)
	na := startNode(b, srv.ClientURL(), "a", "b")
	nb := startNode(b, srv.ClientURL(), "b", "a")
	// Nobody else reads the feeds here: drained, they never hold the
	// store's watch back.
	for _, n := range []*node{na, nb} {
		go func() {
			for range n.feed {
			}
		}()
	}
	noStore := func(context.Context) error { return nil }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		// One avatar per 100 sessions: an avatar holds at most
		// session.MaxPerAvatar, revoked ones included.
		token, s, err := na.sessions.Create(ctx, fmt.Sprintf("avatar-%d", i/100), session.Meta{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		out, err := na.b.Revoke(ctx, []session.Revocation{revocationOf(s, "signed out")}, noStore)
		if err != nil || out.NodesTold != 2 {
			b.Fatalf("Revoke = %+v, %v; want both nodes told", out, err)
		}
		b.StopTimer()
		if _, err := nb.sessions.AuthenticateCached(ctx, token); !errors.Is(err, session.ErrRevoked) {
			b.Fatalf("node b after Revoke: %v; want ErrRevoked", err)
		}
		if err := na.sessions.Revoke(ctx, s.ID, "signed out"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
