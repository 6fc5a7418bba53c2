package biometrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// extractBoth extracts win with ex and with the reference, and says how
// their results differ: any bit of any feature, of the liveness figures,
// or of the hands' head-relative positions the liveness points read from
// the extractor afterwards. It returns the live extractor's features.
func extractBoth(ex *extractor, ref *referenceExtractor, win []sample) (Features, bool, string) {
	got, ok := ex.extract(win)
	want, wantOK := ref.extract(win)
	if ok != wantOK {
		return got, ok, fmt.Sprintf("ok %v, reference %v", ok, wantOK)
	}
	if !ok {
		return got, ok, ""
	}
	if got.StartUS != want.StartUS || got.EndUS != want.EndUS {
		return got, ok, fmt.Sprintf("span %d..%d, reference %d..%d", got.StartUS, got.EndUS, want.StartUS, want.EndUS)
	}
	names := func(prefix string, n int) func(int) string {
		return func(i int) string {
			if prefix == "core" && n == len(FeatureNames) {
				return FeatureNames[i]
			}
			return fmt.Sprintf("%s[%d]", prefix, i)
		}
	}
	for _, c := range []struct {
		what      string
		got, want []float64
	}{
		{"core", got.Core, want.Core},
		{"gaze", got.Gaze, want.Gaze},
		{"heart", got.Heart, want.Heart},
		{"liveness", liveFigures(&got.live), liveFigures(&want.live)},
	} {
		if (c.got == nil) != (c.want == nil) || len(c.got) != len(c.want) {
			return got, ok, fmt.Sprintf("%s %v, reference %v", c.what, c.got, c.want)
		}
		name := names(c.what, len(c.got))
		for i := range c.got {
			if math.Float64bits(c.got[i]) != math.Float64bits(c.want[i]) {
				return got, ok, fmt.Sprintf("%s %.17g (%#x), reference %.17g (%#x)", name(i), c.got[i], math.Float64bits(c.got[i]), c.want[i], math.Float64bits(c.want[i]))
			}
		}
	}
	for i := range win {
		for k := range 6 {
			g, w := ex.handRel[i][k], ref.handRel[i][k]
			if math.Float64bits(g) != math.Float64bits(w) {
				return got, ok, fmt.Sprintf("handRel[%d][%d] %.17g, reference %.17g", i, k, g, w)
			}
		}
	}
	return got, ok, ""
}

// skipWhereMultiplyAddsFuse skips a comparison with the reference on a
// build whose compiler fuses a multiply and an add into one rounding
// (GOAMD64=v3 and up, arm64, ...). Go fuses where the operands are in
// registers and not where one is read from memory, so the live form
// (scalars) and the reference (arrays) fuse in different places; the
// reference itself gives other bits on such a build than on the default
// amd64 build, where templates and figures were made and neither form
// fuses.
func skipWhereMultiplyAddsFuse(t testing.TB) {
	t.Helper()
	// 1+2⁻³⁰ times 1−2⁻³⁰ is 1−2⁻⁶⁰: rounded, 1, so the sum is 0; fused,
	// the sum keeps the −2⁻⁶⁰.
	if multiplyAdd(1+0x1p-30, 1-0x1p-30, -1) != 0 {
		t.Skip("this build fuses multiply-adds: the extractor is held to the reference's bits on builds that do not (the default for amd64)")
	}
}

//go:noinline
func multiplyAdd(x, y, z float64) float64 { return x*y + z }

// extractorPair is a live extractor and a reference one at the defaults.
func extractorPair(t testing.TB) (*extractor, *referenceExtractor) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newExtractor(cfg), newReferenceExtractor(cfg)
}

func liveFigures(l *windowLiveness) []float64 {
	return []float64{l.maxHandSpeed, l.tremorRMS, l.pathLength, l.trackedShare}
}

// What a random window may hold, one bit each.
const (
	windowGaps        = 1 << iota // segment starts inside the window
	windowUntracked               // hands untracked now and then, their poses zero or stale
	windowGaze                    // gaze on most samples
	windowHeart                   // heart rate on most samples
	windowStraightUp              // the head pitched to ±90°, about the yaw frame's fallback
	windowWild                    // arbitrary finite values, unit quaternions or not
	windowStill                   // a body that does not move
	windowHalfPresent             // gaze and heart rate on about half the samples
	windowFlagsAll    = 1<<iota - 1
)

// randomWindow draws n samples of a body moving at random, shaped by flags.
func randomWindow(rng *rand.Rand, n int, flags int) []sample {
	win := make([]sample, n)
	walk := [3][3]float64{{0, 1.7, 0}, {-0.3, 1.2, -0.3}, {0.3, 1.2, -0.3}}
	turn := [3][3]float64{}
	for k := range turn {
		for j := range turn[k] {
			turn[k][j] = (rng.Float64() - 0.5) * 2 * math.Pi
		}
	}
	share := 0.9
	if flags&windowHalfPresent != 0 {
		share = 0.5
	}
	step := 0.01
	if flags&windowStill != 0 {
		step = 0
	}
	for i := range win {
		s := &win[i]
		s.timeUS = uint64(1_000_000 + 20_000*i)
		s.segStart = i == 0 || (flags&windowGaps != 0 && rng.IntN(12) == 0)
		for k, p := range []*Pose{&s.head, &s.left, &s.right} {
			for j := range 3 {
				walk[k][j] += step * rng.NormFloat64()
				turn[k][j] += 5 * step * rng.NormFloat64()
				p.Pos[j] = float32(walk[k][j])
			}
			p.Rot = eulerQuat(turn[k][0], turn[k][1], turn[k][2])
			p.Tracked = true
		}
		if flags&windowStraightUp != 0 && rng.IntN(3) > 0 {
			pitch := math.Copysign(math.Pi/2, rng.Float64()-0.5)
			if rng.IntN(2) == 0 {
				pitch += (rng.Float64() - 0.5) * 4e-3 // either side of the fallback's threshold
			}
			s.head.Rot = eulerQuat(turn[0][0], pitch, turn[0][2])
		}
		if flags&windowUntracked != 0 {
			for _, p := range []*Pose{&s.left, &s.right} {
				if rng.IntN(8) == 0 {
					p.Tracked = false
					if rng.IntN(2) == 0 {
						*p = Pose{}
					}
				}
			}
		}
		if flags&windowWild != 0 && rng.IntN(4) == 0 {
			p := []*Pose{&s.head, &s.left, &s.right}[rng.IntN(3)]
			for j := range p.Pos {
				p.Pos[j] = wildFloat(rng)
			}
			for j := range p.Rot {
				p.Rot[j] = wildFloat(rng)
			}
		}
		if flags&windowGaze != 0 && rng.Float64() < share {
			s.hasGaze = true
			g := eulerQuat(turn[0][0], turn[0][1], 0)
			b := basisOf(g)
			fwd := b.forward()
			s.gaze.Dir = [3]float32{float32(fwd[0]), float32(fwd[1]), float32(fwd[2])}
			if rng.IntN(5) > 0 {
				s.gaze.PupilMM = float32(2 + 6*rng.Float64())
			}
		}
		if flags&windowHeart != 0 && rng.Float64() < share {
			s.heartRate = float32(50 + 100*rng.Float64())
		}
	}
	return win
}

// eulerQuat is the rotation by yaw about up, then pitch about right, then
// roll about forward, as a float32 quaternion (x, y, z, w).
func eulerQuat(yaw, pitch, roll float64) [4]float32 {
	mul := func(a, b [4]float64) [4]float64 {
		return [4]float64{
			a[3]*b[0] + a[0]*b[3] + a[1]*b[2] - a[2]*b[1],
			a[3]*b[1] - a[0]*b[2] + a[1]*b[3] + a[2]*b[0],
			a[3]*b[2] + a[0]*b[1] - a[1]*b[0] + a[2]*b[3],
			a[3]*b[3] - a[0]*b[0] - a[1]*b[1] - a[2]*b[2],
		}
	}
	y := [4]float64{0, math.Sin(yaw / 2), 0, math.Cos(yaw / 2)}
	p := [4]float64{math.Sin(pitch / 2), 0, 0, math.Cos(pitch / 2)}
	r := [4]float64{0, 0, math.Sin(roll / 2), math.Cos(roll / 2)}
	q := mul(mul(y, p), r)
	return [4]float32{float32(q[0]), float32(q[1]), float32(q[2]), float32(q[3])}
}

// wildFloat is a finite float32 of any size, or one of the values at the
// edges: a frame's numbers are checked to be finite and nothing more when
// its pose is untracked.
func wildFloat(rng *rand.Rand) float32 {
	switch rng.IntN(4) {
	case 0:
		return []float32{0, float32(math.Copysign(0, -1)), 1, -1, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}[rng.IntN(7)]
	case 1:
		for {
			if v := math.Float32frombits(rng.Uint32()); !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
				return v
			}
		}
	default:
		return float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-4)))
	}
}

// TestExtractMatchesReferenceOnRandomWindows: the live extractor gives the
// reference's features, bit for bit, for windows of every shape, one
// extractor reused across them all (windows of other lengths included) as
// the engine lends its scratch from stream to stream.
func TestExtractMatchesReferenceOnRandomWindows(t *testing.T) {
	skipWhereMultiplyAddsFuse(t)
	ex, ref := extractorPair(t)
	rng := rand.New(rand.NewPCG(21, 22))
	var extracted, fallbacks int
	for trial := range 3000 {
		flags := rng.IntN(windowFlagsAll + 1)
		n := 100
		if trial%10 == 0 {
			n = rng.IntN(130)
		}
		win := randomWindow(rng, n, flags)
		_, ok, diff := extractBoth(ex, ref, win)
		if diff != "" {
			t.Fatalf("trial %d (flags %#x, %d samples): %s", trial, flags, n, diff)
		}
		if ok {
			extracted++
		}
		for i := range win {
			b := basisOf(win[i].head.Rot)
			if f := b.forward(); math.Hypot(f[0], f[2]) < 1e-3 {
				fallbacks++
			}
		}
	}
	if extracted < 1000 || fallbacks < 1000 {
		t.Fatalf("%d windows extracted, %d samples on the yaw frame's fallback: the trials miss what they are for", extracted, fallbacks)
	}
}

// TestExtractMatchesReferenceAtTheEdges: windows at the lines the
// extractor draws (too short, tracked on exactly 80 %, gaze and heart rate
// on exactly half the samples or one more, a segment start on every
// sample), each as the reference has them.
func TestExtractMatchesReferenceAtTheEdges(t *testing.T) {
	skipWhereMultiplyAddsFuse(t)
	ex, ref := extractorPair(t)
	rng := rand.New(rand.NewPCG(23, 24))
	base := func(n int) []sample { return randomWindow(rng, n, 0) }
	cases := map[string][]sample{}
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		cases[fmt.Sprintf("%d samples", n)] = base(n)
	}
	for _, untracked := range []int{19, 20, 21} {
		w := base(100)
		for i := range untracked {
			w[i*4].left.Tracked = false
		}
		cases[fmt.Sprintf("%d untracked", untracked)] = w
	}
	for _, present := range []int{50, 51} {
		w := base(100)
		for i := range present {
			w[i].hasGaze, w[i].gaze.Dir, w[i].gaze.PupilMM = true, [3]float32{0, 0, -1}, 4
			w[i].heartRate = 70 + float32(i)
		}
		cases[fmt.Sprintf("gaze and heart on %d", present)] = w
	}
	allStarts := base(100)
	for i := range allStarts {
		allStarts[i].segStart = true
	}
	cases["a segment start on every sample"] = allStarts
	still := randomWindow(rng, 100, windowStill|windowGaze|windowHeart)
	cases["still"] = still
	for name, win := range cases {
		if _, _, diff := extractBoth(ex, ref, win); diff != "" {
			t.Errorf("%s: %s", name, diff)
		}
	}
}

// FuzzExtractMatchesReference: any window drawn from a seed, a length and
// the shape flags has the reference's features, bit for bit.
func FuzzExtractMatchesReference(f *testing.F) {
	skipWhereMultiplyAddsFuse(f)
	for flags := range windowFlagsAll + 1 {
		f.Add(uint64(flags)*7919, uint8(100), uint8(flags))
	}
	f.Add(uint64(1), uint8(8), uint8(windowGaps))
	f.Add(uint64(2), uint8(255), uint8(windowFlagsAll))
	f.Fuzz(func(t *testing.T, seed uint64, n, flags uint8) {
		win := randomWindow(rand.New(rand.NewPCG(seed, 25)), int(n), int(flags))
		ex, ref := extractorPair(t)
		if _, _, diff := extractBoth(ex, ref, win); diff != "" {
			t.Fatalf("seed %d, %d samples, flags %#x: %s", seed, n, flags, diff)
		}
	})
}
