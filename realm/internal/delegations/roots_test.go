package delegations

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.uber.org/goleak"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRootsRefreshOnTheirClock: Run reads the published signers each time
// the roots' clock passes rootsRefresh, and only then; a key retired
// longer ago than rootGrace no longer roots a delegation, judged on the
// same clock; a failed read keeps what the set had.
func TestRootsRefreshOnTheirClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := clock.NewManual(time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC))
	own := common.HexToAddress("0x00000000000000000000000000000000000000a1")
	current := common.HexToAddress("0x00000000000000000000000000000000000000b2")
	retired := common.HexToAddress("0x00000000000000000000000000000000000000c3")
	retiredAt := clk.Now()
	var mu sync.Mutex
	reads := 0
	var failing error
	published := func(context.Context) ([]Published, error) {
		mu.Lock()
		defer mu.Unlock()
		reads++
		return []Published{{Address: current}, {Address: retired, Until: &retiredAt}}, failing
	}
	readsSoFar := func() int { mu.Lock(); defer mu.Unlock(); return reads }
	r := &Roots{Set: agents.NewRootSet(), Own: []common.Address{own}, Published: published, Log: slog.New(slog.DiscardHandler), Clock: clk}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	defer func() { stop(); <-done }()
	if err := clk.WaitArmed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if readsSoFar() != 0 || r.Set.Trusted(own) {
		t.Fatal("the roots were read before the clock passed the refresh period")
	}
	// refreshed waits until the loop has read the signers n times in all
	// (it reads on a goroutine of its own once the clock moved).
	refreshed := func(n int) {
		t.Helper()
		for readsSoFar() < n {
			select {
			case <-ctx.Done():
				t.Fatalf("%d reads of the published signers, want %d", readsSoFar(), n)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	clk.Advance(rootsRefresh)
	refreshed(1)
	waitTrusted := func(addr common.Address, want bool) {
		t.Helper()
		for r.Set.Trusted(addr) != want {
			select {
			case <-ctx.Done():
				t.Fatalf("%s trusted = %v, want %v", addr.Hex(), !want, want)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitTrusted(own, true)
	waitTrusted(current, true)
	waitTrusted(retired, true) // retired a moment ago: still within rootGrace

	// Past the grace, on the same clock: the retired key no longer roots.
	clk.Advance(rootGrace)
	refreshed(2)
	waitTrusted(retired, false)
	waitTrusted(current, true)

	// A failed read keeps the set as it was.
	mu.Lock()
	failing = errors.New("store away")
	mu.Unlock()
	clk.Advance(rootsRefresh)
	refreshed(3)
	if !r.Set.Trusted(current) || !r.Set.Trusted(own) || r.Set.Trusted(retired) {
		t.Fatal("a failed read changed the trusted roots")
	}
}
