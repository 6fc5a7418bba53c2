package gctarget

import (
	"context"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a tuner whose readings and clock a test writes, and whose
// targets it sees.
func scripted(t *testing.T) (*Tuner, *Reading, *time.Time, *[]int) {
	t.Helper()
	tu, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var r Reading
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var set []int
	tu.read = func() Reading { return r }
	tu.now = func() time.Time { return now }
	tu.set = func(p int) { set = append(set, p) }
	return tu, &r, &now, &set
}

// TestTargetFollowsTheCollectorsShare walks the target through the
// shares a node meets: it starts at the floor, doubles while the
// collector takes more than the budget, up to the ceiling and no
// further, holds between a third of the budget and the budget, and
// halves back to the floor once the collector costs little. It judges
// only after two collections, or after waitAtMost without them.
func TestTargetFollowsTheCollectorsShare(t *testing.T) {
	tu, r, now, set := scripted(t)
	st := tu.start()
	if st.percent != DefaultFloor || len(*set) != 1 || (*set)[0] != DefaultFloor {
		t.Fatalf("started at %d, set %v; want the floor %d set", st.percent, *set, DefaultFloor)
	}
	// step: the program used `used` seconds of CPU over two collections,
	// the collector took share of it.
	step := func(share float64, cycles uint64) {
		const used = 10.0
		r.Used += used
		r.Taken += share * used
		r.Cycles += cycles
		*now = now.Add(DefaultEvery)
		tu.look(&st)
	}
	for i, c := range []struct {
		share  float64
		cycles uint64
		want   int
	}{
		{0.20, 1, 20},  // one collection says too little: no judgement yet
		{0.20, 1, 40},  // two since the start: a fifth of the CPU, doubled
		{0.20, 2, 80},  // still over the budget
		{0.06, 2, 100}, // over it, up to the ceiling
		{0.30, 2, 100}, // and no further
		{0.03, 2, 100}, // under the budget, over a third of it: held
		{0.049, 2, 100},
		{0.01, 2, 50}, // cheap: halved
		{0.01, 2, 25},
		{0.01, 2, 20}, // down to the floor
		{0.00, 2, 20}, // and no further
		{0.04, 2, 20}, // held at the floor while within the budget
	} {
		step(c.share, c.cycles)
		if st.percent != c.want {
			t.Fatalf("step %d (share %.3f, %d collections): target %d, want %d", i, c.share, c.cycles, st.percent, c.want)
		}
	}
	// The collector took much, and then no collection ends for waitAtMost:
	// that judgement counts the CPU used since as the collector's
	// absence, and the target falls.
	step(0.5, 2)
	if st.percent != 40 {
		t.Fatalf("target %d after a costly look, want 40", st.percent)
	}
	for range int(waitAtMost/DefaultEvery) - 1 {
		r.Used += 10
		*now = now.Add(DefaultEvery)
		tu.look(&st)
		if st.percent != 40 {
			t.Fatalf("target %d before %v without collections passed, want it held at 40", st.percent, waitAtMost)
		}
	}
	r.Used += 10
	*now = now.Add(DefaultEvery)
	tu.look(&st)
	if st.percent != 20 {
		t.Fatalf("target %d after %v without collections, want 20", st.percent, waitAtMost)
	}
	if got := (*set)[len(*set)-1]; got != 20 {
		t.Fatalf("the runtime's target was last set to %d, want 20", got)
	}
}

func TestShare(t *testing.T) {
	for _, c := range []struct {
		from, to Reading
		want     float64
	}{
		{Reading{Taken: 1, Used: 10}, Reading{Taken: 2, Used: 20}, 0.1},
		{Reading{Taken: 1, Used: 10}, Reading{Taken: 1, Used: 10}, 0}, // no CPU used
		{Reading{Taken: 2, Used: 10}, Reading{Taken: 1, Used: 20}, 0}, // estimates that went back
	} {
		if got := Share(c.from, c.to); got != c.want {
			t.Errorf("Share(%+v, %+v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []Config{
		{Floor: -5}, {Floor: 50, Ceiling: 40}, {Budget: -0.1}, {Budget: 1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) took it", cfg)
		}
	}
}

// TestRaisesTheTargetOfACostlyCollector runs the tuner on this process's
// own collector, against a program that keeps a heap full of pointers and
// allocates as fast as it can: at the floor its collector takes far more
// than the budget, and the tuner raises the target.
func TestRaisesTheTargetOfACostlyCollector(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	tu, err := New(Config{Every: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var highest atomic.Int64
	tu.set = func(p int) {
		debug.SetGCPercent(p)
		if int64(p) > highest.Load() {
			highest.Store(int64(p))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { tu.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	type node struct {
		next  *node
		value *int
	}
	// Live: a long list the collector must walk at every collection.
	var live *node
	for i := range 300_000 {
		live = &node{next: live, value: &i}
	}
	deadline := time.Now().Add(20 * time.Second)
	var sink *node
	for highest.Load() <= int64(DefaultFloor) && time.Now().Before(deadline) {
		for i := range 10_000 {
			sink = &node{next: sink, value: &i}
		}
		sink = nil
	}
	if highest.Load() <= int64(DefaultFloor) {
		t.Fatalf("the target stayed at the floor (%d) while the collector walked a heap of pointers at every turn", DefaultFloor)
	}
	_ = live.next
}
