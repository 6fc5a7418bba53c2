package evaluation

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// TestPerturbedReplaysAreWhatTheySay: a drifted replay moves the hands
// by a slow wave of at most 2 cm a component, and nothing else;
// a head-turned one turns the head about the vertical by at most 4° and
// moves nothing.
func TestPerturbedReplaysAreWhatTheySay(t *testing.T) {
	frames := synth.NewPerson(7).Session(1).Frames(720, hz)
	for _, kind := range PerturbedReplayKinds {
		out := transform(frames, kind, rand.New(rand.NewPCG(1, 2)))
		var moved, headMoved, turned float64
		for i := range frames {
			a, b := &frames[i], &out[i]
			for c := range 3 {
				headMoved = math.Max(headMoved, math.Abs(float64(b.Head.Pos[c]-a.Head.Pos[c])))
			}
			for k, p := range []*biometrics.Pose{&a.Head, &a.Left, &a.Right} {
				q := []*biometrics.Pose{&b.Head, &b.Left, &b.Right}[k]
				for c := range 3 {
					moved = math.Max(moved, math.Abs(float64(q.Pos[c]-p.Pos[c])))
				}
				turned = math.Max(turned, yawBetween(p.Rot, q.Rot))
			}
		}
		switch kind {
		case "drifted":
			// A rotation copied as it was reads as a turn of float32's
			// rounding, under a tenth of a degree.
			if moved < 0.015 || moved > 0.0201 || turned > 2e-3 || headMoved != 0 {
				t.Errorf("drifted: moved up to %.4f m (want 0.015-0.02), the head %.4f m (want none), turned %.6f rad (want none)", moved, headMoved, turned)
			}
		case "head-turned":
			if turned < 3.5*math.Pi/180 || turned > 4.001*math.Pi/180 || moved != 0 {
				t.Errorf("head-turned: turned up to %.3f° (want 3.5-4), moved %.4f m (want none)", turned*180/math.Pi, moved)
			}
		default:
			t.Errorf("no check for %s", kind)
		}
	}
}

// yawBetween is the angle of the rotation from p to q, in radians, for
// rotations that differ by a turn about one axis.
func yawBetween(p, q [4]float32) float64 {
	var dot float64
	for i := range p {
		dot += float64(p[i]) * float64(q[i])
	}
	return 2 * math.Acos(math.Min(1, math.Abs(dot)))
}
