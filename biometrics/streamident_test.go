package biometrics_test

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// pushAll streams frames into s in messages of 8, nine a second from
// *clock on, and returns the liveness reasons it raised.
func pushAll(s *biometrics.Stream, frames []biometrics.Frame, clock *time.Time) []string {
	var reasons []string
	for i := 0; i < len(frames); i += 8 {
		*clock = clock.Add(time.Second / 9)
		for _, ev := range s.Push(frames[i:min(i+8, len(frames))], *clock) {
			if ev.Kind == biometrics.EventLiveness {
				reasons = append(reasons, ev.Reason)
			}
		}
	}
	return reasons
}

// TestReopenedStreamTakesItsAvatarsMotionAsItsOwn: a node that sheds an
// avatar's stream opens a new one when the client comes back, and the
// client may send its last seconds of frames again. That motion is the
// avatar's own of seconds before, which its stream would have left out as
// its own overlap (ownExclusionPoints), not a replay; sent by another
// avatar, or by a second headset of the same avatar streaming at the same
// time, it is one.
func TestReopenedStreamTakesItsAvatarsMotionAsItsOwn(t *testing.T) {
	e, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	frames := synth.NewPerson(3).Session(0).Frames(72*45, 72)
	first, last := frames[:72*40], frames[72*35:72*40]

	shed := e.NewStream("walker", nil)
	if r := pushAll(shed, first, &clock); len(r) > 0 {
		t.Fatalf("the avatar's first stream: %v", r)
	}
	shed.Close()
	shed.Close() // a second Close changes nothing
	clock = clock.Add(15 * time.Second)

	again := e.NewStream("walker", nil)
	defer again.Close()
	if r := pushAll(again, last, &clock); len(r) > 0 {
		t.Errorf("the avatar's stream opened again, its last 5 s sent again: %v, want no alarm", r)
	}
	if r := pushAll(again, frames[72*40:], &clock); len(r) > 0 {
		t.Errorf("the avatar's stream opened again, going on: %v, want no alarm", r)
	}

	// The same 5 s from another avatar, and from a second headset of the
	// avatar while its stream is open, are replays.
	for _, id := range []string{"someone else", "walker"} {
		s := e.NewStream(id, nil)
		if r := pushAll(s, last, &clock); !contains(r, biometrics.LivenessReplay) {
			t.Errorf("%q sends the avatar's motion of seconds before: %v, want %q", id, r, biometrics.LivenessReplay)
		}
		s.Close()
	}

	// Of two headsets of one avatar, one closes while the other streams:
	// a stream opened then cannot tell whose it is, and takes neither's
	// motion as its own.
	two := synth.NewPerson(4).Session(0).Frames(72*40, 72)
	a, b := e.NewStream("pair", nil), e.NewStream("pair", nil)
	defer b.Close()
	pushAll(a, two, &clock)
	a.Close()
	a.Close() // nor here: b is still open
	c := e.NewStream("pair", nil)
	defer c.Close()
	if r := pushAll(c, two[72*35:], &clock); !contains(r, biometrics.LivenessReplay) {
		t.Errorf("a stream opened while another of the avatar streams sends the closed one's last 5 s: %v, want %q", r, biometrics.LivenessReplay)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
