package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

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

// TestSincosIsSinAndCos: math.Sincos, which the generator uses for its
// rotations, gives bit for bit what math.Sin and math.Cos give, over the
// angles a generator turns by and far beyond.
func TestSincosIsSinAndCos(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for i := range 2_000_000 {
		x := []float64{rng.NormFloat64(), 10 * rng.NormFloat64(), 1e6 * rng.NormFloat64(), math.Float64frombits(rng.Uint64())}[i%4]
		s, c := math.Sincos(x)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		if math.Float64bits(s) != math.Float64bits(math.Sin(x)) || math.Float64bits(c) != math.Float64bits(math.Cos(x)) {
			t.Fatalf("Sincos(%v) = %v, %v; Sin, Cos = %v, %v", x, s, c, math.Sin(x), math.Cos(x))
		}
	}
}

// TestMotionIsUnchanged: a synthetic person's frames, with the default
// integration and with one step a frame (as the load tool moves its
// avatars), hash to what they did before the generator's rotations took
// sine and cosine together; the evaluation's figures rest on them.
func TestMotionIsUnchanged(t *testing.T) {
	for _, c := range []struct {
		maxStep time.Duration
		want    string
	}{{0, wantMotionDefault}, {time.Second / 72, wantMotionOneStep}} {
		g := NewPerson(7).Session(1)
		if c.maxStep > 0 {
			g.SetMaxStep(c.maxStep)
		}
		h := sha256.New()
		for _, f := range g.Frames(3000, 72) {
			if f.Gaze != nil {
				fmt.Fprintf(h, "%+v", *f.Gaze)
			}
			f.Gaze = nil // an address
			fmt.Fprintf(h, "%+v", f)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("max step %v: frames hash to %s, want %s", c.maxStep, got, c.want)
		}
	}
}

// The hashes of TestMotionIsUnchanged, taken before the change, and again
// when the head got its neck's sway (neckSigma), on purpose; with
// neckSigma set to 0 the frames hash to the earlier e848d598… and
// fd3b772f….
const (
	wantMotionDefault = "6b1128c0a3091e3a3210db878efff3a7a9970b10c0b7e0f6ace1479519933f14"
	wantMotionOneStep = "484201d40b4a53cfb1290e658b2da45010c23a9b228a230a97899b7ff4f40a48"
)

// TestTurnIsMul: turn, with mul's product where it declines, gives bit
// for bit the head's and the controllers' rotations as mul composes them,
// on random angles and on angles whose sines or cosines are zero, where
// components of the result are zero and their sign is mul's to decide.
func TestTurnIsMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	special := []float64{0, math.Copysign(0, -1), math.Pi, -math.Pi, 2 * math.Pi, -2 * math.Pi, math.Pi / 2, 1e-300, -1e-300}
	angle := func(i int) float64 {
		switch i % 3 {
		case 0:
			return special[rng.IntN(len(special))]
		case 1:
			return 4 * rng.NormFloat64()
		}
		return 1e3 * rng.NormFloat64()
	}
	declined := 0
	for i := range 300_000 {
		yaw, pitch, roll := angle(i), angle(i/3), angle(i/9)
		rollQ := axisQ([3]float64{0, 0, -1}, roll)
		for _, identity := range []bool{false, true} {
			want := mul(mul(yawQ(yaw), axisQ([3]float64{1, 0, 0}, pitch)), rollQ)
			if identity {
				want = mul(want, [4]float64{0, 0, 0, 1})
			}
			got, ok := turn(yaw, pitch, rollQ[2], rollQ[3])
			if !ok {
				declined++
				continue
			}
			for k := range 4 {
				if math.Float64bits(got[k]) != math.Float64bits(want[k]) {
					t.Fatalf("turn(%v, %v, roll %v)[%d] = %v, mul gives %v (identity after: %v)", yaw, pitch, roll, k, got[k], want[k], identity)
				}
			}
		}
	}
	if declined == 0 {
		t.Fatal("turn never declined: the angles with zero sines did not reach mul's signs of zero")
	}
}
