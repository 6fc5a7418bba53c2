package xr

import (
	"testing"
	"time"
)

// TestStatusDue: a stream being scored gets its status with a score from
// three quarters of a second on, alone only after xrStatusLongest without
// one; a stream not scored (enrolling, or without a template) gets it
// every second.
func TestStatusDue(t *testing.T) {
	for _, c := range []struct {
		since           time.Duration
		scored, scoring bool
		want            bool
	}{
		{700 * time.Millisecond, true, true, false},
		{750 * time.Millisecond, true, true, true},
		{2 * time.Second, true, true, true},
		{2 * time.Second, false, true, false}, // a thinned stream's score is a hop away
		{xrStatusLongest, false, true, true},
		{900 * time.Millisecond, false, false, false},
		{xrStatusEvery, false, false, true},
	} {
		if got := statusDue(c.since, c.scored, c.scoring); got != c.want {
			t.Errorf("statusDue(%s, scored %v, scoring %v) = %v, want %v", c.since, c.scored, c.scoring, got, c.want)
		}
	}
}
