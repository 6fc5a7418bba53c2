package clock

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestAdvanceFiresDueFunctionsInOrderBeforeReturning(t *testing.T) {
	m := NewManual(t0)
	var got []string
	var at []time.Time
	add := func(name string) func() {
		return func() { got = append(got, name); at = append(at, m.Now()) }
	}
	m.AfterFunc(3*time.Second, add("c"))
	m.AfterFunc(time.Second, add("a"))
	m.AfterFunc(2*time.Second, add("b1"))
	m.AfterFunc(2*time.Second, add("b2")) // same time: in the order armed
	late := m.AfterFunc(10*time.Second, add("late"))

	m.Advance(3 * time.Second)
	want := []string{"a", "b1", "b2", "c"}
	if len(got) != len(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("fired %v, want %v", got, want)
		}
	}
	// Each function reads the time it was due at, not the end of the move.
	for i, d := range []time.Duration{1, 2, 2, 3} {
		if !at[i].Equal(t0.Add(d * time.Second)) {
			t.Fatalf("%s read %v, want %v", got[i], at[i], t0.Add(d*time.Second))
		}
	}
	if !m.Now().Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("Now = %v after Advance(3s)", m.Now())
	}
	if m.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1 (the late one)", m.Armed())
	}
	if !late.Stop() {
		t.Fatal("Stop of an armed timer reported false")
	}
	m.Advance(time.Hour)
	if len(got) != 4 {
		t.Fatalf("a stopped timer fired: %v", got)
	}
	if late.Stop() {
		t.Fatal("Stop of a stopped timer reported true")
	}
}

func TestTimerFiresNotBeforeItsTime(t *testing.T) {
	m := NewManual(t0)
	tm := m.NewTimer(time.Minute)
	m.Advance(time.Minute - time.Nanosecond)
	select {
	case v := <-tm.C():
		t.Fatalf("timer fired at %v, a nanosecond early", v)
	default:
	}
	m.Advance(time.Nanosecond)
	select {
	case v := <-tm.C():
		if !v.Equal(t0.Add(time.Minute)) {
			t.Fatalf("timer sent %v, want %v", v, t0.Add(time.Minute))
		}
	default:
		t.Fatal("timer did not fire at its time")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reported it active")
	}
	if !tm.Reset(2 * time.Second) {
		t.Fatal("Reset of an armed timer reported it inactive")
	}
	m.Advance(time.Second)
	select {
	case <-tm.C():
		t.Fatal("a reset timer fired at its earlier time")
	default:
	}
	m.Advance(time.Second)
	<-tm.C()
}

func TestStopAndResetDropAStaleTime(t *testing.T) {
	m := NewManual(t0)
	tm := m.NewTimer(time.Second)
	m.Advance(time.Second) // fired; its value waits in the channel
	tm.Reset(time.Minute)
	select {
	case v := <-tm.C():
		t.Fatalf("a reset timer delivered the stale %v", v)
	default:
	}
	tk := m.NewTicker(time.Second)
	m.Advance(time.Second)
	tk.Stop()
	select {
	case v := <-tk.C():
		t.Fatalf("a stopped ticker delivered the stale %v", v)
	default:
	}
}

func TestZeroDurationFiresAtTheNextMove(t *testing.T) {
	m := NewManual(t0)
	fired := false
	m.AfterFunc(0, func() { fired = true })
	if fired {
		t.Fatal("AfterFunc(0) ran before the clock moved")
	}
	m.Advance(0)
	if !fired {
		t.Fatal("AfterFunc(0) did not run at Advance(0)")
	}
}

func TestTickerTicksOncePerPeriodAndDropsWhatIsUnread(t *testing.T) {
	m := NewManual(t0)
	tk := m.NewTicker(time.Second)
	defer tk.Stop()
	m.Advance(3500 * time.Millisecond) // three ticks, one slot: the first stays
	if v := <-tk.C(); !v.Equal(t0.Add(time.Second)) {
		t.Fatalf("first tick %v, want %v", v, t0.Add(time.Second))
	}
	select {
	case v := <-tk.C():
		t.Fatalf("a second value %v; the channel holds one", v)
	default:
	}
	m.Advance(500 * time.Millisecond)
	if v := <-tk.C(); !v.Equal(t0.Add(4 * time.Second)) {
		t.Fatalf("tick %v, want %v", v, t0.Add(4*time.Second))
	}
	tk.Reset(10 * time.Second)
	m.Advance(9 * time.Second)
	select {
	case v := <-tk.C():
		t.Fatalf("ticked at %v before the new period", v)
	default:
	}
	m.Advance(time.Second)
	<-tk.C()
	if m.Armed() != 1 {
		t.Fatalf("Armed = %d for one ticker", m.Armed())
	}
}

func TestAFunctionMayArmTheNextTimer(t *testing.T) {
	m := NewManual(t0)
	var times []time.Time
	var step func()
	step = func() {
		times = append(times, m.Now())
		if len(times) < 5 {
			m.AfterFunc(time.Second, step)
		}
	}
	m.AfterFunc(time.Second, step)
	m.Advance(time.Minute)
	if len(times) != 5 || !times[4].Equal(t0.Add(5*time.Second)) {
		t.Fatalf("chained functions ran at %v, want five, a second apart", times)
	}
}

func TestSetBackFiresNothing(t *testing.T) {
	m := NewManual(t0)
	fired := false
	m.AfterFunc(time.Second, func() { fired = true })
	m.Advance(-time.Hour)
	m.Set(t0.Add(-time.Minute))
	if fired || !m.Now().Equal(t0.Add(-time.Minute)) {
		t.Fatalf("moving back: fired %v, Now %v", fired, m.Now())
	}
	m.Set(t0.Add(time.Second))
	if !fired {
		t.Fatal("Set to the timer's time did not fire it")
	}
}

func TestWaitArmedWaitsForTheCodeUnderTest(t *testing.T) {
	m := NewManual(t0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tm := m.NewTimer(time.Second)
		<-tm.C()
	}()
	if err := m.WaitArmed(ctx, 1); err != nil {
		t.Fatal(err)
	}
	m.Advance(time.Second)
	<-done
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := m.WaitArmed(short, 1); err == nil {
		t.Fatal("WaitArmed returned nil with nothing armed and its context ended")
	}
}

// TestConcurrentUse is for the race detector: readers, timers armed and
// stopped, and the clock moved, all at once.
func TestConcurrentUse(t *testing.T) {
	m := NewManual(t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				tm := m.AfterFunc(time.Duration(i%7)*time.Millisecond, func() { mu.Lock(); fired++; mu.Unlock() })
				if i%3 == 0 {
					tm.Stop()
				}
				_ = m.Now()
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			m.Advance(time.Millisecond)
		}
	})
	wg.Wait()
	m.Advance(time.Hour)
	if m.Armed() != 0 {
		t.Fatalf("Armed = %d after every timer's time passed", m.Armed())
	}
	mu.Lock()
	defer mu.Unlock()
	if fired == 0 || fired > 800 {
		t.Fatalf("fired %d functions", fired)
	}
}

func TestRealIsTime(t *testing.T) {
	c := Or(nil)
	if _, ok := c.(Real); !ok {
		t.Fatalf("Or(nil) = %T, want Real", c)
	}
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Real.Now %v before time.Now %v", now, before)
	}
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	m := NewManual(t0)
	if Or(m) != Clock(m) {
		t.Fatal("Or(c) is not c")
	}
}

// TestConcurrentMovesAddUp: Advance calls made at once are made one
// after the other, none lost.
func TestConcurrentMovesAddUp(t *testing.T) {
	m := NewManual(t0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				m.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if got := m.Now(); !got.Equal(t0.Add(800 * time.Millisecond)) {
		t.Fatalf("after 800 concurrent Advance(1ms): %v, want %v", got, t0.Add(800*time.Millisecond))
	}
}
