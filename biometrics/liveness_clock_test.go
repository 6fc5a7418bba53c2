package biometrics

import (
	"testing"
	"time"
)

// TestClockDriftThenSameBucketDoesNotPanic replays a device clock that runs
// far slower than the arrival clock until the drift check fires, then sends
// more frames inside the bucket the check restarted: they must be scored,
// not crash the node (a stream is untrusted input).
func TestClockDriftThenSameBucketDoesNotPanic(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	l := newLiveState(cfg)
	start := time.Unix(1_800_000_000, 0)
	fired := false
	var device uint64
	for i := 0; i < 5000 && !fired; i++ {
		arrival := start.Add(time.Duration(i) * 20 * time.Millisecond)
		device += 10_000 // the device says 10 ms passed for every 20 ms
		f := Frame{TimeUS: device}
		fired = l.frame(&f, arrival) == LivenessClock
		if fired {
			// Frames right after, in the same bucket.
			for j := 1; j <= 3; j++ {
				device += 10_000
				g := Frame{TimeUS: device}
				l.frame(&g, arrival.Add(time.Duration(j)*time.Millisecond))
			}
		}
	}
	if !fired {
		t.Fatal("a device clock running at half speed never tripped the drift check")
	}
}
