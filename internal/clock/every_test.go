package clock

import (
	"context"
	"testing"
	"time"
)

// runEvery starts EveryOrWake on m in a goroutine of its own, each call
// sent on the returned channel with the clock's time, and waits until its
// ticker is armed. The returned stop ends the loop and waits for it.
func runEvery(t *testing.T, m *Manual, d time.Duration, wake <-chan struct{}) (calls <-chan time.Time, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan time.Time, 16)
	done := make(chan struct{})
	armedBefore := m.Armed()
	go func() {
		defer close(done)
		EveryOrWake(ctx, m, d, wake, func(ctx context.Context) {
			if ctx.Err() != nil {
				t.Error("f called with an ended context")
			}
			ch <- m.Now()
		})
	}()
	wait, cancelWait := context.WithTimeout(context.Background(), time.Minute)
	defer cancelWait()
	if err := m.WaitArmed(wait, armedBefore+1); err != nil {
		t.Fatal(err)
	}
	return ch, func() { cancel(); <-done }
}

// next waits for the loop's next call, with a generous limit.
func next(t *testing.T, calls <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-calls:
		return at
	case <-time.After(time.Minute):
		t.Fatal("the loop was not called")
		return time.Time{}
	}
}

func TestEveryRunsOncePerPeriodOfItsClock(t *testing.T) {
	m := NewManual(t0)
	calls, stop := runEvery(t, m, 5*time.Second, nil)
	defer stop()
	m.Advance(5*time.Second - time.Nanosecond)
	select {
	case at := <-calls:
		t.Fatalf("called at %v, before a whole period", at)
	default:
	}
	for i := 1; i <= 3; i++ {
		m.Advance(time.Nanosecond)
		if at := next(t, calls); !at.Equal(t0.Add(time.Duration(i) * 5 * time.Second)) {
			t.Fatalf("call %d at %v, want %v", i, at, t0.Add(time.Duration(i)*5*time.Second))
		}
		m.Advance(5*time.Second - time.Nanosecond)
	}
}

func TestEveryOrWakeRunsWhenWoken(t *testing.T) {
	m := NewManual(t0)
	wake := make(chan struct{})
	calls, stop := runEvery(t, m, time.Hour, wake)
	defer stop()
	wake <- struct{}{}
	if at := next(t, calls); !at.Equal(t0) {
		t.Fatalf("woken call read %v; the clock did not move", at)
	}
	m.Advance(time.Hour)
	next(t, calls)
}

func TestEveryEndsWithItsContext(t *testing.T) {
	m := NewManual(t0)
	calls, stop := runEvery(t, m, time.Second, nil)
	stop() // returns only once the loop has returned
	if m.Armed() != 0 {
		t.Fatalf("%d timers still armed after the loop ended", m.Armed())
	}
	m.Advance(time.Minute)
	select {
	case at := <-calls:
		t.Fatalf("called at %v after its context ended", at)
	default:
	}
}

func TestEveryOnTheRealClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	Every(ctx, Real{}, time.Millisecond, func(context.Context) {
		if n++; n == 3 {
			cancel()
		}
	})
	if n != 3 {
		t.Fatalf("called %d times, want 3 (it stops once its context ends)", n)
	}
}
