package biometrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// TestQuietSyntheticPeopleDoNotRetraceThemselves: 60 synthetic people
// whose hands barely move (low Activity, quick Tempo: the hands stay within
// millimetres of their rest) stream together for three minutes into one
// engine, moved as the load tool moves its avatars (one integration step a
// frame), with a registry that remembers tens of seconds, as a node of
// 2,000 avatars does. Hardly a window may be found on earlier motion, and
// none may be called a replay.
//
// Before the synthetic head swayed on its neck, such a person's motion
// relative to the head in its yaw frame (the registry's motion points) was
// nearly only the head's yaw wobble: one angle, one arc, retraced within a
// centimetre whenever the head turned across it the same way again. Here
// that was 39 windows found on the person's own motion of 10-30 s before;
// in the long load runs, one or two honest avatars in 2,500 suspended.
func TestQuietSyntheticPeopleDoNotRetraceThemselves(t *testing.T) {
	const people, minutes, messagesPerSecond = 60, 3, 9
	e, err := biometrics.NewEngine(biometrics.Config{ReplayMaxPoints: 12_000})
	if err != nil {
		t.Fatal(err)
	}
	dt := time.Second / 72
	var gens []*synth.Generator
	var streams []*biometrics.Stream
	for seed := int64(1); len(gens) < people; seed++ {
		p := synth.NewPerson(seed)
		if p.Activity >= 0.5 || p.Tempo <= 0.55 {
			continue
		}
		g := p.Session(0)
		g.SetMaxStep(dt)
		gens = append(gens, g)
		streams = append(streams, e.NewStream(fmt.Sprintf("quiet-%d", seed), nil))
	}
	defer func() {
		for _, s := range streams {
			s.Close()
		}
	}()
	clock := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	frames := make([]biometrics.Frame, 8)
	var gazes [8]biometrics.Gaze
	copies := make([]int, people)
	found := 0
	for range minutes * 60 * messagesPerSecond {
		clock = clock.Add(time.Second / messagesPerSecond)
		for i, s := range streams {
			for k := range frames {
				gens[i].NextInto(dt, &frames[k], &gazes[k])
			}
			for _, ev := range s.Push(frames, clock) {
				if ev.Kind == biometrics.EventLiveness {
					t.Errorf("quiet person %d: %s", i, ev.Reason)
				}
			}
			// A run of windows found on earlier motion grows by one per
			// window; count each window once.
			if c, _ := biometrics.ReplayRuns(s); c > copies[i] {
				found++
			}
			copies[i], _ = biometrics.ReplayRuns(s)
		}
	}
	// A coincidence now and then is what the rule of two or three windows
	// in a row is for; a person who retraces themselves comes back to it.
	if found > 3 {
		t.Errorf("%d windows of %d quiet people in %d min were found on earlier motion, want at most 3", found, people, minutes)
	}
	t.Logf("%d quiet people, %d min: %d windows found on earlier motion", people, minutes, found)
}
