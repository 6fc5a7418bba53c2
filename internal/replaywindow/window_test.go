package replaywindow

import (
	"testing"
	"time"
)

func TestWindowRefusesRepeatsForAtLeastItsPeriod(t *testing.T) {
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	w := New(time.Minute, 1000)
	a, b := ID{1}, ID{2}
	if got := w.Add(a, start); got != Added {
		t.Fatalf("first add = %v", got)
	}
	for _, at := range []time.Duration{0, 30 * time.Second, 59 * time.Second, 90 * time.Second} {
		if got := w.Add(a, start.Add(at)); got != Repeated {
			t.Errorf("again after %s = %v, want Repeated", at, got)
		}
	}
	// Two periods after the generation that holds it ended (at 90 s,
	// when the window last turned), it is forgotten.
	if got := w.Add(a, start.Add(90*time.Second+2*time.Minute)); got != Added {
		t.Errorf("two periods on = %v, want Added", got)
	}
	if got := w.Add(b, start.Add(90*time.Second+2*time.Minute)); got != Added {
		t.Errorf("another id = %v", got)
	}
}

func TestWindowRefusesWhenFull(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	w := New(time.Minute, 2)
	w.Add(ID{1}, now)
	w.Add(ID{2}, now)
	if got := w.Add(ID{3}, now); got != Full {
		t.Errorf("a third id in a window of 2 = %v, want Full", got)
	}
	if got := w.Add(ID{3}, now.Add(3*time.Minute)); got != Added {
		t.Errorf("once the others aged out = %v, want Added", got)
	}
}
