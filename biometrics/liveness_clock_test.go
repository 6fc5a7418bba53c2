package biometrics

import (
	"strings"
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
		fired = l.frame(rawOffset(device, arrival), 0, arrival) == LivenessClock
		if fired {
			// Frames right after, in the same bucket.
			for j := 1; j <= 3; j++ {
				device += 10_000
				at := arrival.Add(time.Duration(j) * time.Millisecond)
				l.frame(rawOffset(device, at), 0, at)
			}
		}
	}
	if !fired {
		t.Fatal("a device clock running at half speed never tripped the drift check")
	}
	if !strings.Contains(l.clockDetail, "runs slow") || !strings.Contains(l.clockDetail, "(50 %") {
		t.Errorf("detail %q, want a clock running 50 %% slow", l.clockDetail)
	}
}

// rawOffset is a frame's arrival minus its device time, with no node lag
// to discount.
func rawOffset(deviceUS uint64, arrival time.Time) int64 {
	return arrival.UnixMicro() - int64(deviceUS)
}

// clockRun feeds 72 Hz frames for the given device duration to a fresh
// liveness state, with arrival(device) giving each frame's arrival, and
// returns the arrival time of the first clock alarm (zero if none).
func clockRun(t *testing.T, d time.Duration, arrival func(device time.Duration) time.Duration) time.Duration {
	t.Helper()
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	l := newLiveState(cfg)
	start := time.Unix(1_800_000_000, 0)
	const base = uint64(5_000_000)
	for dev := time.Duration(0); dev < d; dev += time.Second / 72 {
		at := arrival(dev)
		if l.frame(rawOffset(base+uint64(dev.Microseconds()), start.Add(at)), 0, start.Add(at)) == LivenessClock {
			return at
		}
	}
	return 0
}

// TestClockHoldUpIsNotAnAlarm: frames held up on the way arrive together
// once the hold-up clears. Whether the hold-up is at the stream's start
// (a node too busy to read a thousand new connections at once) or in the
// middle (a stalled network), the device has not run fast, and honest
// motion must not be suspended for it.
func TestClockHoldUpIsNotAnAlarm(t *testing.T) {
	const latency = 20 * time.Millisecond
	cases := map[string]func(time.Duration) time.Duration{
		// The first 3 s of motion are read in one burst 3 s late, then on time.
		"start": func(dev time.Duration) time.Duration {
			if dev < 3*time.Second {
				return 3*time.Second + dev/20
			}
			return dev + latency
		},
		// 4 s of motion stall from 30 s on, then drain within 200 ms.
		"middle": func(dev time.Duration) time.Duration {
			if dev >= 30*time.Second && dev < 34*time.Second {
				return 34*time.Second + (dev-30*time.Second)/20
			}
			return dev + latency
		},
		// Jittery network, 5-150 ms.
		"jitter": func(dev time.Duration) time.Duration {
			return dev + 5*time.Millisecond + time.Duration(dev.Microseconds()*7919%145_000)*time.Microsecond
		},
	}
	for name, arrival := range cases {
		if at := clockRun(t, 90*time.Second, arrival); at != 0 {
			t.Errorf("%s: clock alarm at %v of honest motion", name, at)
		}
	}
}

// TestClockRunningFastOrBurstIsCaught: motion delivered faster than real
// time, steadily (a replay sped up by half) or all at once (a minute of
// motion pushed in seconds), is impossible timing.
func TestClockRunningFastOrBurstIsCaught(t *testing.T) {
	if at := clockRun(t, 90*time.Second, func(dev time.Duration) time.Duration { return dev * 2 / 3 }); at == 0 || at > 30*time.Second {
		t.Errorf("a device clock at 1.5x: first alarm at %v, want within 30 s", at)
	}
	if at := clockRun(t, 60*time.Second, func(dev time.Duration) time.Duration { return dev / 20 }); at == 0 || at > 2*time.Second {
		t.Errorf("a minute of motion in three seconds: first alarm at %v, want within 2 s", at)
	}
	if at := clockRun(t, 90*time.Second, func(dev time.Duration) time.Duration { return dev * 4 / 3 }); at == 0 || at > 40*time.Second {
		t.Errorf("a device clock at 0.75x: first alarm at %v, want within 40 s", at)
	}
}
