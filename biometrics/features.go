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

// postureOf computes the per-sample posture channels and the hands'
// positions relative to the head in its yaw frame.
func postureOf(s *sample, out *[numPosture]float64) {
	hb := basisOf(s.head.Rot)
	fwd := hb.forward()
	right := hb.right()
	out[chPitch] = math.Asin(clamp(fwd[1], -1, 1))
	out[chRoll] = math.Asin(clamp(right[1], -1, 1))
	// Yaw frame: horizontal forward and right. Looking straight up or down
	// leaves no horizontal forward; fall back to the head's up vector,
	// which then points horizontally.
	hf := vec3{fwd[0], 0, fwd[2]}
	if hf.norm() < 1e-3 {
		up := hb.up()
		hf = vec3{up[0], 0, up[2]}
		if fwd[1] > 0 {
			hf = hf.scale(-1)
		}
	}
	hf = hf.scale(1 / math.Max(hf.norm(), 1e-9))
	hr := cross(hf, axisUp)
	toYaw := func(v vec3) (float64, float64, float64) { return v.dot(hr), v[1], v.dot(hf) }
	head := posOf(&s.head)
	l := posOf(&s.left).sub(head)
	r := posOf(&s.right).sub(head)
	out[chLX], out[chLY], out[chLZ] = toYaw(l)
	out[chRX], out[chRY], out[chRZ] = toYaw(r)
	// Controllers' orientation relative to the head itself (not its yaw
	// frame): how the hands are held relative to where the person looks.
	{
		hv := func(v vec3) (float64, float64, float64) {
			v = hb.inverse(v)
			return v[0], v[1], v[2]
		}
		lb, rb := basisOf(s.left.Rot), basisOf(s.right.Rot)
		out[chLFX], out[chLFY], out[chLFZ] = hv(lb.forward())
		out[chLUX], out[chLUY], out[chLUZ] = hv(lb.up())
		out[chRFX], out[chRFY], out[chRFZ] = hv(rb.forward())
		out[chRUX], out[chRUY], out[chRUZ] = hv(rb.up())
	}
	out[chHandDist] = posOf(&s.left).sub(posOf(&s.right)).norm()
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
		postureOf(s, &e.posture[i])
		p := &e.posture[i]
		e.handRel[i] = [6]float64{p[chLX], p[chLY], p[chLZ], p[chRX], p[chRY], p[chRZ]}
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
		for j, pair := range [3][2]*Pose{{&a.head, &b.head}, {&a.left, &b.left}, {&a.right, &b.right}} {
			v := posOf(pair[1]).sub(posOf(pair[0])).norm() / dt
			e.speed[j] = append(e.speed[j], v)
			if j > 0 && v > live.maxHandSpeed {
				live.maxHandSpeed = v
			}
		}
		e.angular = append(e.angular, quatAngle(a.head.Rot, b.head.Rot)/dt)
		var d float64
		for k := range 6 {
			x := e.handRel[i][k] - e.handRel[i-1][k]
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
	for j := range 3 {
		var m, acc moments
		sp := e.speed[j]
		for i := range sp {
			m.add(sp[i])
			if i > 0 && !win[i].segStart {
				acc.add(math.Abs(sp[i]-sp[i-1]) / dt)
			}
		}
		core[offSpeed+j] = math.Log(m.mean() + 1e-3)
		core[offSpeed+3+j] = math.Log(m.std() + 1e-3)
		core[offAccel+j] = math.Log(acc.mean() + 1e-2)
	}
	var ang moments
	for _, v := range e.angular {
		ang.add(v)
	}
	core[offAngular] = math.Log(ang.mean() + 1e-3)
	tl := highBandRMS(win, func(s *sample) *Pose { return &s.left })
	tr := highBandRMS(win, func(s *sample) *Pose { return &s.right })
	th := highBandRMS(win, func(s *sample) *Pose { return &s.head })
	core[offTremor] = math.Log(tl + 1e-5)
	core[offTremor+1] = math.Log(tr + 1e-5)
	core[offTremor+2] = math.Log(th + 1e-5)
	live.tremorRMS = math.Min(tl, tr)
	core[offCoupling] = correlation(e.speed[0], e.speed[1])
	core[offCoupling+1] = correlation(e.speed[0], e.speed[2])
	core[offCoupling+2] = correlation(e.speed[1], e.speed[2])

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

// highBandRMS is the RMS of a pose's position after removing its moving
// average over about 0.1 s: what is left is the fast band where
// physiological tremor (8-12 Hz) lives. Real hands always have some; a
// replay through a smoothing pipeline or a scripted trajectory has none.
func highBandRMS(win []sample, pose func(*sample) *Pose) float64 {
	const half = 2 // 5 samples
	var sum float64
	var cnt int
outer:
	for i := half; i < len(win)-half; i++ {
		for k := i - half + 1; k <= i+half; k++ {
			if win[k].segStart {
				continue outer
			}
		}
		var avg vec3
		for k := i - half; k <= i+half; k++ {
			p := posOf(pose(&win[k]))
			avg[0] += p[0]
			avg[1] += p[1]
			avg[2] += p[2]
		}
		avg = avg.scale(1.0 / (2*half + 1))
		d := posOf(pose(&win[i])).sub(avg)
		sum += d.dot(d)
		cnt++
	}
	if cnt == 0 {
		return 0
	}
	return math.Sqrt(sum / float64(cnt))
}

func correlation(a, b []float64) float64 {
	n := min(len(a), len(b))
	if n < 2 {
		return 0
	}
	var ma, mb moments
	for i := range n {
		ma.add(a[i])
		mb.add(b[i])
	}
	var cov float64
	for i := range n {
		cov += (a[i] - ma.mu) * (b[i] - mb.mu)
	}
	cov /= float64(n - 1)
	sa, sb := ma.std(), mb.std()
	if sa < 1e-9 || sb < 1e-9 {
		return 0
	}
	return cov / (sa * sb)
}
