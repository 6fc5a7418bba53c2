package trust_test

import (
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

func TestManualClock(t *testing.T) {
	c := trust.NewManualClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v, want %v", got, t0)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("after Advance(90s): Now() = %v, want %v", got, want)
	}
	later := t0.Add(24 * time.Hour)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Errorf("after Set(%v): Now() = %v", later, got)
	}
}

func TestManualClockConcurrent(t *testing.T) {
	c := trust.NewManualClock(t0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(8*time.Second); !got.Equal(want) {
		t.Errorf("after 8000 concurrent Advance(1ms): Now() = %v, want %v", got, want)
	}
}

func TestSystemClock(t *testing.T) {
	before := time.Now()
	got := trust.SystemClock{}.Now()
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("SystemClock.Now() = %v, not between the surrounding time.Now() calls", got)
	}
}
