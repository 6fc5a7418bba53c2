package assets

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/clock"
)

var errOverLimit = errors.New("over the velocity limit")

// limitVelocity is a policy: a fungible leg whose 24-hour sum reaches
// limit is refused. It records the velocity it was shown.
func limitVelocity(limit uint64, seen *[]Velocity, mu *sync.Mutex) func(context.Context, Check) error {
	return func(_ context.Context, chk Check) error {
		v := chk.Velocity[0]
		if v == nil {
			return errors.New("no velocity for a fungible leg")
		}
		mu.Lock()
		*seen = append(*seen, *v)
		mu.Unlock()
		if v.Sum24h >= limit {
			return errOverLimit
		}
		return nil
	}
}

func TestVelocitySumsOverSlidingWindows(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	clk := clock.NewManual(time.Now())
	l := ledgerFor(t, testStore(t), Config{Node: "n1", Collections: []Collection{{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 10_000}}}}, Clock: clk})
	var seen []Velocity
	var mu sync.Mutex
	authorize := limitVelocity(1000, &seen, &mu)
	deadline := uint64(clk.Now().Add(72 * time.Hour).Unix())
	nonce := uint64(0)
	send := func(amount uint64) error {
		nonce++
		tr := Transfer{Collection: "credits", Amount: amount, From: a.addr, To: b.addr, Nonce: nonce, Deadline: deadline}
		sig, _ := Sign(l.Scheme().TransferDigest(&tr), a.key)
		_, err := l.Transfer(ctx, tr, sig, authorize)
		return err
	}
	steps := []struct {
		after  time.Duration
		amount uint64
		want   Velocity
		refuse bool
	}{
		{0, 100, Velocity{Sum1h: 100, Sum24h: 100, Count1h: 1, Count24h: 1}, false},
		{30 * time.Minute, 200, Velocity{Sum1h: 300, Sum24h: 300, Count1h: 2, Count24h: 2}, false},
		// An hour after the first: it leaves the short window only.
		{30 * time.Minute, 50, Velocity{Sum1h: 250, Sum24h: 350, Count1h: 2, Count24h: 3}, false},
		// Over the limit with what went before: refused, and not counted.
		{time.Hour, 700, Velocity{Sum1h: 700, Sum24h: 1050, Count1h: 1, Count24h: 4}, true},
		{0, 600, Velocity{Sum1h: 600, Sum24h: 950, Count1h: 1, Count24h: 4}, false},
		// 24 hours after the second transfer, only the third and fifth count.
		{22*time.Hour + 30*time.Minute, 10, Velocity{Sum1h: 10, Sum24h: 660, Count1h: 1, Count24h: 3}, false},
	}
	for i, s := range steps {
		clk.Advance(s.after)
		err := send(s.amount)
		if s.refuse != errors.Is(err, errOverLimit) || !s.refuse && err != nil {
			t.Fatalf("step %d: transfer of %d = %v, want refused %v", i, s.amount, err, s.refuse)
		}
		if got := seen[len(seen)-1]; got != s.want {
			t.Fatalf("step %d: velocity = %+v, want %+v", i, got, s.want)
		}
	}
	if bal, _ := l.view.balance("credits", b.addr); bal != 960 {
		t.Fatalf("b's balance = %d, want 960 (the refused 700 not moved)", bal)
	}
}

// TestVelocitySerializesTransfersAcrossNodes decides two transfers of one
// holder on two nodes at the same moment: each alone is under the limit,
// together they are not. Both are decided before either is written (a
// barrier holds the first decisions), so each node's decision misses the
// other's transfer; the velocity record written with each batch makes the
// second write fail, and that transfer is decided again, and refused.
func TestVelocitySerializesTransfersAcrossNodes(t *testing.T) {
	ctx := context.Background()
	a, b := newWallet(t), newWallet(t)
	colls := []Collection{{ID: "credits", Kind: Fungible, Mints: []BalanceMint{{a.addr, 10_000}}}}
	st := testStore(t)
	nodes := []*Ledger{newTestLedger(t, st, "n1", colls), newTestLedger(t, st, "n2", colls)}
	deadline := uint64(time.Now().Add(time.Hour).Unix())

	var seen []Velocity
	var mu sync.Mutex
	limit := limitVelocity(1000, &seen, &mu)
	var barrier sync.WaitGroup
	barrier.Add(2)
	results := make([]error, 2)
	var done sync.WaitGroup
	for i, l := range nodes {
		done.Add(1)
		go func() {
			defer done.Done()
			first := true
			authorize := func(ctx context.Context, chk Check) error {
				err := limit(ctx, chk)
				if first {
					first = false
					barrier.Done()
					barrier.Wait()
				}
				return err
			}
			tr := Transfer{Collection: "credits", Amount: 600, From: a.addr, To: b.addr, Nonce: uint64(i + 1), Deadline: deadline}
			sig, _ := Sign(l.Scheme().TransferDigest(&tr), a.key)
			_, results[i] = l.Transfer(ctx, tr, sig, authorize)
		}()
	}
	done.Wait()
	ok, refused := 0, 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, errOverLimit):
			refused++
		default:
			t.Fatalf("transfer = %v, want allowed or refused over the limit", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("two transfers of 600 under a limit of 1000 on two nodes: %d allowed, %d refused; want 1 and 1 (results %v, decisions %+v)", ok, refused, results, seen)
	}
	if len(seen) != 3 || seen[2].Sum24h != 1200 {
		t.Fatalf("decisions = %+v, want three: both at 600, then the loser again at 1200", seen)
	}
	for _, l := range nodes {
		if err := l.catchUpSubject(ctx, balanceSubject("credits", b.addr)); err != nil {
			t.Fatal(err)
		}
		if bal, _ := l.view.balance("credits", b.addr); bal != 600 {
			t.Fatalf("%s: b's balance = %d, want 600", l.Node(), bal)
		}
	}
}
