package biometrics_test

import (
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// thinnedRun streams 40 s of person 20's motion through a trusted stream
// enrolled as them, with the engine thinning from the start or not, and
// returns the stream's events, its counters and what it filed for
// replays.
func thinnedRun(t *testing.T, thin, trusted bool) ([]biometrics.Event, biometrics.StreamStats, []biometrics.FiledPoint) {
	t.Helper()
	e := newEngine(t)
	e.SetThinning(thin)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := e.NewStream("a", enrolledTemplate(t, 20))
	s.SetTrusted(trusted)
	events := push(s, synth.NewPerson(20).Session(2).Frames(40*72, 72), &clock)
	return events, s.Stats(), biometrics.FiledPoints(e, s)
}

func scoresOf(events []biometrics.Event) []float64 {
	var out []float64
	for _, ev := range events {
		if ev.Kind == biometrics.EventScore {
			out = append(out, ev.Probability)
		}
	}
	return out
}

// TestThinningLeavesEveryOtherWindowOfAConfidentStream: a trusted stream
// sure of its wearer is judged every other window while the engine
// thins, and every window when it does not; the windows it judges still
// file every point of its motion for replays, joined as without thinning.
func TestThinningLeavesEveryOtherWindowOfAConfidentStream(t *testing.T) {
	fullEvents, full, fullPoints := thinnedRun(t, false, true)
	thinEvents, thin, thinPoints := thinnedRun(t, true, true)
	if full.WindowsThinned != 0 {
		t.Errorf("without thinning, %d windows thinned", full.WindowsThinned)
	}
	windows := full.WindowsScored
	if windows < 35 {
		t.Fatalf("only %d windows scored in 40 s", windows)
	}
	if thin.WindowsScored+thin.WindowsThinned != windows {
		t.Errorf("thinning: %d scored + %d thinned, want the %d windows in all", thin.WindowsScored, thin.WindowsThinned, windows)
	}
	// The stream is judged in full until its evidence holds it above
	// AdaptAbove, then every other window.
	if thin.WindowsThinned < windows/2-4 {
		t.Errorf("thinning: %d of %d windows thinned, want nearly half", thin.WindowsThinned, windows)
	}
	for _, p := range scoresOf(thinEvents)[len(scoresOf(thinEvents))-10:] {
		if p < 0.9 {
			t.Errorf("thinned stream's probability fell to %.3f on its own wearer", p)
		}
	}
	if last := scoresOf(fullEvents); last[len(last)-1] < 0.9 {
		t.Fatalf("full stream's probability ends at %.3f", last[len(last)-1])
	}
	if len(fullPoints) < 200 {
		t.Fatalf("only %d points filed in 40 s", len(fullPoints))
	}
	if !slices.Equal(thinPoints, fullPoints) {
		missing := 0
		for _, p := range fullPoints {
			if !slices.Contains(thinPoints, p) {
				missing++
			}
		}
		t.Errorf("thinning filed %d points, %d of the %d filed without it missing or unjoined", len(thinPoints), missing, len(fullPoints))
	}
}

// TestThinningSparesStreamsInDoubt: a stream the realm does not trust is
// judged every window while the engine thins.
func TestThinningSparesStreamsInDoubt(t *testing.T) {
	_, st, _ := thinnedRun(t, true, false)
	if st.WindowsThinned != 0 || st.WindowsScored < 35 {
		t.Errorf("untrusted stream: %d windows thinned, %d scored; want none thinned", st.WindowsThinned, st.WindowsScored)
	}
}

// TestThinnedStreamSeesAChangeOfWearer: the first doubtful window ends
// thinning for the stream, so a change of wearer is seen at most a window
// later than without thinning, and within 10 s.
func TestThinnedStreamSeesAChangeOfWearer(t *testing.T) {
	detect := func(thin bool) (seen time.Duration, thinnedBefore, thinnedAfter uint64) {
		e := newEngine(t)
		e.SetThinning(thin)
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := e.NewStream("a", enrolledTemplate(t, 10))
		s.SetTrusted(true)
		ga := synth.NewPerson(10).Session(2)
		push(s, ga.Frames(20*72, 72), &clock)
		thinnedBefore = s.Stats().WindowsThinned
		gb := synth.NewPerson(11).Session(2)
		gb.SetTime(ga.TimeUS(), 0)
		swap := clock
		seen = -1
		for _, ev := range push(s, gb.Frames(15*72, 72), &clock) {
			if ev.Kind == biometrics.EventScore && ev.Probability < 0.5 && seen < 0 {
				seen = ev.At.Sub(swap)
			}
		}
		return seen, thinnedBefore, s.Stats().WindowsThinned - thinnedBefore
	}
	full, _, _ := detect(false)
	thin, before, after := detect(true)
	if before == 0 {
		t.Fatal("the stream was not thinned before the change of wearer")
	}
	// The evidence falls from its bound by about a window's worth a
	// judged window: one or two windows are thinned before it falls under
	// AdaptAbove, none after.
	if after > 2 {
		t.Errorf("%d windows thinned in the 15 s after the change of wearer, want at most 2", after)
	}
	if full < 0 || thin < 0 || thin > 10*time.Second || thin > full+2*time.Second {
		t.Errorf("change of wearer seen after %v thinned, %v in full: want within 10 s and at most 2 s (a window) later", thin, full)
	}
	t.Logf("change of wearer seen after %v thinned, %v in full", thin, full)
}

// TestThinnedStreamsMotionIsCaughtReplayed: motion streamed through a
// thinned stream is all on file, so a replay of any stretch of it through
// another stream is caught.
func TestThinnedStreamsMotionIsCaughtReplayed(t *testing.T) {
	e := newEngine(t)
	e.SetThinning(true)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frames := synth.NewPerson(20).Session(2).Frames(40*72, 72)
	victim := e.NewStream("a", enrolledTemplate(t, 20))
	victim.SetTrusted(true)
	for _, ev := range push(victim, frames, &clock) {
		if ev.Kind == biometrics.EventLiveness {
			t.Fatalf("the victim's own motion failed liveness: %s", ev.Reason)
		}
	}
	if victim.Stats().WindowsThinned == 0 {
		t.Fatal("the victim's stream was not thinned")
	}
	// Stretches of 8 s starting on odd and even seconds: each lies as
	// much in thinned windows' hops as in judged ones'.
	for i, from := range []int{13, 20, 27} {
		stretch := slices.Clone(frames[from*72 : (from+8)*72])
		for j := range stretch {
			stretch[j].TimeUS += 3_600_000_000
		}
		attacker := e.NewStream("mallory"+string(rune('0'+i)), nil)
		var caught bool
		for _, ev := range push(attacker, stretch, &clock) {
			caught = caught || ev.Kind == biometrics.EventLiveness && ev.Reason == biometrics.LivenessReplay
		}
		attacker.Close()
		if !caught {
			t.Errorf("a replay of the thinned stream's motion from %d s to %d s was not caught", from, from+8)
		}
	}
}
