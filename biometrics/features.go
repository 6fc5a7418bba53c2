package biometrics

import (
	"math"
)

// Posture channels computed per sample, all relative to the head in the
// head's yaw frame (x right, y up, z forward), so that they do not change
// when the floor is recalibrated, the player turns, or walks.
const (
	chPitch = iota // head pitch: how the person carries their head
	chRoll         // head roll
	chLX           // left hand relative to the head: right, up, forward (m)
	chLY
	chLZ
	chRX // right hand relative to the head
	chRY
	chRZ
	chLFX // left controller's pointing direction in the head's frame
	chLFY
	chLFZ
	chLUX // left controller's up direction: with pointing, the grip
	chLUY
	chLUZ
	chRFX // right controller's pointing direction
	chRFY
	chRFZ
	chRUX // right controller's up direction
	chRUY
	chRUZ
	chHandDist // hand-to-hand distance: arm span in use
	numPosture
)

// Layout of the core feature vector; FeatureNames documents each entry.
const (
	offPostureMean  = 0
	offPostureStd   = offPostureMean + numPosture
	offSpeed        = offPostureStd + numPosture // log mean and log std of head, left, right speed
	offAccel        = offSpeed + 6               // log mean acceleration of head, left, right
	offAngular      = offAccel + 3               // log mean head angular speed
	offTremor       = offAngular + 1             // log high-band energy of left, right, head
	offCoupling     = offTremor + 3              // speed correlations head-left, head-right, left-right
	NumCoreFeatures = offCoupling + 3
)

// FeatureNames names each core feature, in order, for documentation and
// plots.
var FeatureNames = func() []string {
	posture := []string{"head_pitch", "head_roll",
		"left_rel_x", "left_rel_y", "left_rel_z", "right_rel_x", "right_rel_y", "right_rel_z",
		"left_fwd_x", "left_fwd_y", "left_fwd_z", "left_up_x", "left_up_y", "left_up_z",
		"right_fwd_x", "right_fwd_y", "right_fwd_z", "right_up_x", "right_up_y", "right_up_z",
		"hand_distance"}
	var n []string
	for _, p := range posture {
		n = append(n, p+"_mean")
	}
	for _, p := range posture {
		n = append(n, p+"_std")
	}

	n = append(n, "head_speed_logmean", "left_speed_logmean", "right_speed_logmean",
		"head_speed_logstd", "left_speed_logstd", "right_speed_logstd",
		"head_accel_logmean", "left_accel_logmean", "right_accel_logmean",
		"head_angular_speed_logmean",
		"left_tremor_logenergy", "right_tremor_logenergy", "head_tremor_logenergy",
		"coupling_head_left", "coupling_head_right", "coupling_left_right")
	return n
}()

// Features describes one window of motion.
type Features struct {
	StartUS, EndUS uint64
	// Core is always present, NumCoreFeatures long.
	Core []float64
	// Gaze: mean and std of gaze yaw and pitch (rad) and of the pupil
	// diameter (mm); nil when the headset sent no gaze for most samples.
	Gaze []float64
	// Heart: mean and std of the heart rate (bpm); nil when absent.
	Heart []float64
	// live holds what the liveness checks need from the same pass.
	live windowLiveness
}

// windowLiveness is what a window says about whether a living body made it.
type windowLiveness struct {
	maxHandSpeed float64 // m/s between samples
	tremorRMS    float64 // m, the smaller of the two hands
	pathLength   float64 // m, hands' path relative to the head
	trackedShare float64
}

// extractor computes features with reusable scratch space. It is not safe
// for concurrent use: the engine lends one to one stream at a time
// (Engine.scratch).
type extractor struct {
	rate    float64
	posture [][numPosture]float64
	speed   [3][]float64
	angular []float64
	handRel [][6]float64
}

func newExtractor(cfg Config) *extractor {
	return &extractor{rate: float64(cfg.SampleRate)}
}

// postureOf computes the per-sample posture channels, and into rel the
// hands' positions relative to the head in its yaw frame (the channels
// chLX to chRZ, which the liveness checks read per sample).
//
// It is the vector algebra of basisOf, cross and the vec3 methods written
// out on scalars, the same operations in the same order (a zero term
// included, where one can change the sign of a zero result): Go keeps
// scalars in registers but a [3]float64 in memory, and this runs on every
// sample of every window, at 21 channels each. The reference copy in
// extract_reference_test.go holds it to the vector form's bits.
func postureOf(s *sample, out *[numPosture]float64, rel *[6]float64) {
	// The head's basis: columns right (r), up (u) and backward (b), the
	// negated forward, as basisOf has them.
	x, y, z, w := float64(s.head.Rot[0]), float64(s.head.Rot[1]), float64(s.head.Rot[2]), float64(s.head.Rot[3])
	r0, r1, r2 := 1-2*(y*y+z*z), 2*w*z+2*y*x, -2*w*y+2*z*x
	u0, u1, u2 := -2*w*z+2*x*y, 1-2*(x*x+z*z), 2*w*x+2*z*y
	b0, b1, b2 := 2*w*y+2*x*z, -2*w*x+2*y*z, 1-2*(x*x+y*y)
	f0, f1, f2 := b0*-1, b1*-1, b2*-1
	out[chPitch] = math.Asin(clamp(f1, -1, 1))
	out[chRoll] = math.Asin(clamp(r1, -1, 1))
	// Yaw frame: horizontal forward and right. Looking straight up or down
	// leaves no horizontal forward; fall back to the head's up vector,
	// which then points horizontally.
	h0, h1, h2 := f0, 0.0, f2
	hn := math.Sqrt(h0*h0 + h1*h1 + h2*h2)
	if hn < 1e-3 {
		h0, h1, h2 = u0, 0, u2
		if f1 > 0 {
			h0, h1, h2 = h0*-1, h1*-1, h2*-1
		}
		hn = math.Sqrt(h0*h0 + h1*h1 + h2*h2)
	}
	inv := 1 / math.Max(hn, 1e-9)
	h0, h1, h2 = h0*inv, h1*inv, h2*inv
	// The yaw frame's right: cross(h, axisUp).
	y0, y1, y2 := h1*0-h2*1, h2*0-h0*0, h0*1-h1*0
	hx, hy, hz := float64(s.head.Pos[0]), float64(s.head.Pos[1]), float64(s.head.Pos[2])
	lx, ly, lz := float64(s.left.Pos[0]), float64(s.left.Pos[1]), float64(s.left.Pos[2])
	rx, ry, rz := float64(s.right.Pos[0]), float64(s.right.Pos[1]), float64(s.right.Pos[2])
	l0, l1, l2 := lx-hx, ly-hy, lz-hz
	rel[0], rel[1], rel[2] = l0*y0+l1*y1+l2*y2, l1, l0*h0+l1*h1+l2*h2
	l0, l1, l2 = rx-hx, ry-hy, rz-hz
	rel[3], rel[4], rel[5] = l0*y0+l1*y1+l2*y2, l1, l0*h0+l1*h1+l2*h2
	copy(out[chLX:chRZ+1], rel[:])
	// Controllers' orientation relative to the head itself (not its yaw
	// frame): how the hands are held relative to where the person looks.
	// Each is the controller's forward or up taken back through the head's
	// rotation (basis.inverse: a dot product with each of its columns).
	for k, rot := range [2]*[4]float32{&s.left.Rot, &s.right.Rot} {
		x, y, z, w := float64(rot[0]), float64(rot[1]), float64(rot[2]), float64(rot[3])
		c0, c1, c2 := (2*w*y+2*x*z)*-1, (-2*w*x+2*y*z)*-1, (1-2*(x*x+y*y))*-1
		o := out[chLFX+6*k : chLFX+6*k+6]
		o[0], o[1], o[2] = r0*c0+r1*c1+r2*c2, u0*c0+u1*c1+u2*c2, b0*c0+b1*c1+b2*c2
		c0, c1, c2 = -2*w*z+2*x*y, 1-2*(x*x+z*z), 2*w*x+2*z*y
		o[3], o[4], o[5] = r0*c0+r1*c1+r2*c2, u0*c0+u1*c1+u2*c2, b0*c0+b1*c1+b2*c2
	}
	d0, d1, d2 := lx-rx, ly-ry, lz-rz
	out[chHandDist] = math.Sqrt(d0*d0 + d1*d1 + d2*d2)
}

// clamp bounds v to [lo, hi] and passes NaN through, as math.Min and
// math.Max would, with plain comparisons: it runs in the replay registry's
// nearest-segment search for every candidate, where the library calls'
// handling of signed zeros and infinities cost a tenth of the search.
func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// extract computes the features of one window of evenly spaced samples. It
// reports false when the window carries too little tracked motion to say
// anything.
func (e *extractor) extract(win []sample) (Features, bool) {
	n := len(win)
	if n < 8 {
		return Features{}, false
	}
	e.posture = grow(e.posture, n)
	e.handRel = grow(e.handRel, n)
	for i := range e.speed {
		e.speed[i] = e.speed[i][:0]
	}
	e.angular = e.angular[:0]
	tracked := 0
	gazeN, hrN := 0, 0
	var gz [3]moments
	var hrm moments
	for i := range win {
		s := &win[i]
		postureOf(s, &e.posture[i], &e.handRel[i])
		if s.left.Tracked && s.right.Tracked {
			tracked++
		}
		if s.hasGaze {
			gazeN++
			d := s.gaze.Dir
			gz[0].add(math.Atan2(float64(d[0]), -float64(d[2])))
			gz[1].add(math.Asin(clamp(float64(d[1]), -1, 1)))
			if s.gaze.PupilMM > 0 {
				gz[2].add(float64(s.gaze.PupilMM))
			}
		}
		if s.heartRate > 0 {
			hrN++
			hrm.add(float64(s.heartRate))
		}
	}
	trackedShare := float64(tracked) / float64(n)
	if trackedShare < 0.8 {
		return Features{}, false
	}
	dt := 1 / e.rate
	var live windowLiveness
	live.trackedShare = trackedShare
	for i := 1; i < n; i++ {
		a, b := &win[i-1], &win[i]
		if b.segStart {
			continue
		}
		vh := poseSpeed(&a.head, &b.head, dt)
		vl := poseSpeed(&a.left, &b.left, dt)
		vr := poseSpeed(&a.right, &b.right, dt)
		e.speed[0] = append(e.speed[0], vh)
		e.speed[1] = append(e.speed[1], vl)
		e.speed[2] = append(e.speed[2], vr)
		if vl > live.maxHandSpeed {
			live.maxHandSpeed = vl
		}
		if vr > live.maxHandSpeed {
			live.maxHandSpeed = vr
		}
		e.angular = append(e.angular, quatAngle(a.head.Rot, b.head.Rot)/dt)
		p, q := &e.handRel[i-1], &e.handRel[i]
		var d float64
		for k := range 6 {
			x := q[k] - p[k]
			d += x * x
		}
		live.pathLength += math.Sqrt(d)
	}

	core := make([]float64, NumCoreFeatures)
	// Mean and spread of every posture channel in two passes over the
	// samples, row by row: no division per sample, as a running mean
	// needs, for the largest block of the features.
	var sum, dev [numPosture]float64
	for i := range n {
		for c, v := range &e.posture[i] {
			sum[c] += v
		}
	}
	for c := range sum {
		sum[c] /= float64(n)
	}
	for i := range n {
		for c, v := range &e.posture[i] {
			d := v - sum[c]
			dev[c] += d * d
		}
	}
	for c := range numPosture {
		core[offPostureMean+c] = sum[c]
		core[offPostureStd+c] = math.Sqrt(dev[c] / float64(n-1))
	}
	// The speeds' moments, their changes' and the angular speed's, in one
	// pass: seven running means that do not wait on each other, where one
	// loop each would wait on every division in turn. couplings takes the
	// speeds' moments from here rather than computing them again: the same
	// additions in the same order, so the same bits.
	var m, acc [3]moments
	var ang moments
	sp0, sp1, sp2 := e.speed[0], e.speed[1], e.speed[2]
	sp1, sp2 = sp1[:len(sp0)], sp2[:len(sp0)]
	angular := e.angular[:len(sp0)]
	for i := range sp0 {
		m[0].add(sp0[i])
		m[1].add(sp1[i])
		m[2].add(sp2[i])
		// The speeds' index, not the samples': a quirk every template was
		// made with.
		if i > 0 && !win[i].segStart {
			acc[0].add(math.Abs(sp0[i]-sp0[i-1]) / dt)
			acc[1].add(math.Abs(sp1[i]-sp1[i-1]) / dt)
			acc[2].add(math.Abs(sp2[i]-sp2[i-1]) / dt)
		}
		ang.add(angular[i])
	}
	for j := range 3 {
		core[offSpeed+j] = math.Log(m[j].mean() + 1e-3)
		core[offSpeed+3+j] = math.Log(m[j].std() + 1e-3)
		core[offAccel+j] = math.Log(acc[j].mean() + 1e-2)
	}
	core[offAngular] = math.Log(ang.mean() + 1e-3)
	tl, tr, th := highBandRMS(win)
	core[offTremor] = math.Log(tl + 1e-5)
	core[offTremor+1] = math.Log(tr + 1e-5)
	core[offTremor+2] = math.Log(th + 1e-5)
	live.tremorRMS = math.Min(tl, tr)
	coupling := couplings(&e.speed, &m)
	copy(core[offCoupling:], coupling[:])

	f := Features{StartUS: win[0].timeUS, EndUS: win[n-1].timeUS, Core: core, live: live}
	if gazeN > n/2 {
		f.Gaze = []float64{gz[0].mean(), gz[0].std(), gz[1].mean(), gz[1].std(), gz[2].mean(), gz[2].std()}
	}
	if hrN > n/2 {
		f.Heart = []float64{hrm.mean(), hrm.std()}
	}
	return f, true
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// moments accumulates a mean and variance in one pass (Welford).
type moments struct {
	n      int
	mu, m2 float64
}

func (m *moments) add(x float64) {
	m.n++
	d := x - m.mu
	m.mu += d / float64(m.n)
	m.m2 += d * (x - m.mu)
}

func (m *moments) mean() float64 { return m.mu }

func (m *moments) std() float64 {
	if m.n < 2 {
		return 0
	}
	return math.Sqrt(m.m2 / float64(m.n-1))
}

func quatAngle(a, b [4]float32) float64 {
	d := math.Abs(float64(a[0]*b[0] + a[1]*b[1] + a[2]*b[2] + a[3]*b[3]))
	return 2 * math.Acos(math.Min(d, 1))
}

// poseSpeed is the distance between two poses' positions over dt.
func poseSpeed(a, b *Pose, dt float64) float64 {
	d0 := float64(b.Pos[0]) - float64(a.Pos[0])
	d1 := float64(b.Pos[1]) - float64(a.Pos[1])
	d2 := float64(b.Pos[2]) - float64(a.Pos[2])
	return math.Sqrt(d0*d0+d1*d1+d2*d2) / dt
}

// highBandRMS is the RMS of the left hand's, right hand's and head's
// positions after removing their moving average over about 0.1 s: what is
// left is the fast band where physiological tremor (8-12 Hz) lives. Real
// hands always have some; a replay through a smoothing pipeline or a
// scripted trajectory has none. The three share one pass: they skip the
// same spans, those across a segment start.
func highBandRMS(win []sample) (left, right, head float64) {
	const half = 2 // 5 samples, as highBandDeviation takes them
	var sl, sr, sh float64
	var cnt int
outer:
	for i := half; i < len(win)-half; i++ {
		w := win[i-half : i+half+1]
		for k := 1; k < len(w); k++ {
			if w[k].segStart {
				continue outer
			}
		}
		sl += highBandDeviation(&w[0].left, &w[1].left, &w[2].left, &w[3].left, &w[4].left)
		sr += highBandDeviation(&w[0].right, &w[1].right, &w[2].right, &w[3].right, &w[4].right)
		sh += highBandDeviation(&w[0].head, &w[1].head, &w[2].head, &w[3].head, &w[4].head)
		cnt++
	}
	if cnt == 0 {
		return 0, 0, 0
	}
	return math.Sqrt(sl / float64(cnt)), math.Sqrt(sr / float64(cnt)), math.Sqrt(sh / float64(cnt))
}

// highBandDeviation is the squared distance of the middle pose c from the
// mean position of the five.
func highBandDeviation(a, b, c, d, e *Pose) float64 {
	const fifth = 1.0 / 5
	d0 := float64(c.Pos[0]) - sumOfFive(a.Pos[0], b.Pos[0], c.Pos[0], d.Pos[0], e.Pos[0])*fifth
	d1 := float64(c.Pos[1]) - sumOfFive(a.Pos[1], b.Pos[1], c.Pos[1], d.Pos[1], e.Pos[1])*fifth
	d2 := float64(c.Pos[2]) - sumOfFive(a.Pos[2], b.Pos[2], c.Pos[2], d.Pos[2], e.Pos[2])*fifth
	return d0*d0 + d1*d1 + d2*d2
}

// sumOfFive adds from a zero, in order, as the running sum it replaces did:
// another order or grouping would round differently.
func sumOfFive(a, b, c, d, e float32) float64 {
	return ((((0 + float64(a)) + float64(b)) + float64(c)) + float64(d)) + float64(e)
}

// couplings are the correlations of the head's and hands' speeds: head
// with left, head with right, left with right. m holds each speed's
// moments. The three covariances share one pass.
func couplings(speed *[3][]float64, m *[3]moments) [3]float64 {
	var out [3]float64
	s0, s1, s2 := speed[0], speed[1], speed[2]
	n := len(s0)
	if n < 2 {
		return out
	}
	s1, s2 = s1[:n], s2[:n]
	var c01, c02, c12 float64
	for i := range n {
		d0, d1, d2 := s0[i]-m[0].mu, s1[i]-m[1].mu, s2[i]-m[2].mu
		c01 += d0 * d1
		c02 += d0 * d2
		c12 += d1 * d2
	}
	sd := [3]float64{m[0].std(), m[1].std(), m[2].std()}
	for k, c := range [3]struct {
		cov  float64
		a, b int
	}{{c01, 0, 1}, {c02, 0, 2}, {c12, 1, 2}} {
		cov := c.cov / float64(n-1)
		sa, sb := sd[c.a], sd[c.b]
		if sa < 1e-9 || sb < 1e-9 {
			continue
		}
		out[k] = cov / (sa * sb)
	}
	return out
}
