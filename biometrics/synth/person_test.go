package synth

import (
	"reflect"
	"testing"

	"github.com/zerorealm/zerorealm/biometrics"
)

func TestDeterministicPerSeed(t *testing.T) {
	a := NewPerson(7).Session(2).Frames(200, 72)
	b := NewPerson(7).Session(2).Frames(200, 72)
	if !reflect.DeepEqual(a, b) {
		t.Error("NewPerson(7).Session(2).Frames twice differ, want identical")
	}
	if c := NewPerson(7).Session(3).Frames(200, 72); reflect.DeepEqual(a, c) {
		t.Error("sessions 2 and 3 of one person are identical, want drift")
	}
	if d := NewPerson(8).Session(2).Frames(200, 72); reflect.DeepEqual(a, d) {
		t.Error("two seeds gave identical motion")
	}
}

func TestFramesAreValid(t *testing.T) {
	for seed := range int64(20) {
		frames := NewPerson(seed).Session(1).Frames(72*20, 72)
		msg, err := biometrics.Encode(nil, frames[:biometrics.MaxFramesPerMessage])
		if err != nil {
			t.Fatal(err)
		}
		if _, rejects, err := biometrics.Decode(msg, nil); err != nil || len(rejects) != 0 {
			t.Fatalf("seed %d: Decode = %v, %v; want valid frames", seed, rejects, err)
		}
		for i := range frames {
			if r := biometrics.ValidateFrame(&frames[i]); r != "" {
				t.Fatalf("seed %d frame %d: %s", seed, i, r)
			}
			if i > 0 && frames[i].TimeUS <= frames[i-1].TimeUS {
				t.Fatalf("seed %d frame %d: time not increasing", seed, i)
			}
		}
		// Hands stay within arm's reach of the head.
		for _, f := range frames {
			for _, h := range []biometrics.Pose{f.Left, f.Right} {
				var d float64
				for k := range 3 {
					x := float64(h.Pos[k] - f.Head.Pos[k])
					d += x * x
				}
				if d > 1.5*1.5 {
					t.Fatalf("seed %d: hand %.2f m from the head", seed, d)
				}
			}
		}
	}
}
