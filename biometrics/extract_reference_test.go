package biometrics

import "math"

// The reference extractor: a frozen copy of the feature extraction as it
// stood before its cost was cut (postureOf, highBandRMS, correlation and
// their helpers, renamed). Every template, cohort and figure was computed
// with it, so the live extractor must give the same float64 bits for every
// window; extract_test.go holds it to that. Leave this copy as it is: a
// change of the features is a change of this reference too, made on
// purpose, with the evaluation run again.

type referenceExtractor struct {
	rate    float64
	posture [][numPosture]float64
	speed   [3][]float64
	angular []float64
	handRel [][6]float64
}

func newReferenceExtractor(cfg Config) *referenceExtractor {
	return &referenceExtractor{rate: float64(cfg.SampleRate)}
}

func referenceBasisOf(q [4]float32) basis {
	x, y, z, w := float64(q[0]), float64(q[1]), float64(q[2]), float64(q[3])
	return basis{
		{1 - 2*(y*y+z*z), 2*w*z + 2*y*x, -2*w*y + 2*z*x},
		{-2*w*z + 2*x*y, 1 - 2*(x*x+z*z), 2*w*x + 2*z*y},
		{2*w*y + 2*x*z, -2*w*x + 2*y*z, 1 - 2*(x*x+y*y)},
	}
}

func referenceClamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func referencePostureOf(s *sample, out *[numPosture]float64) {
	hb := referenceBasisOf(s.head.Rot)
	fwd := hb.forward()
	right := hb.right()
	out[chPitch] = math.Asin(referenceClamp(fwd[1], -1, 1))
	out[chRoll] = math.Asin(referenceClamp(right[1], -1, 1))
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
	{
		hv := func(v vec3) (float64, float64, float64) {
			v = hb.inverse(v)
			return v[0], v[1], v[2]
		}
		lb, rb := referenceBasisOf(s.left.Rot), referenceBasisOf(s.right.Rot)
		out[chLFX], out[chLFY], out[chLFZ] = hv(lb.forward())
		out[chLUX], out[chLUY], out[chLUZ] = hv(lb.up())
		out[chRFX], out[chRFY], out[chRFZ] = hv(rb.forward())
		out[chRUX], out[chRUY], out[chRUZ] = hv(rb.up())
	}
	out[chHandDist] = posOf(&s.left).sub(posOf(&s.right)).norm()
}

func (e *referenceExtractor) extract(win []sample) (Features, bool) {
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
	var gz [3]referenceMoments
	var hrm referenceMoments
	for i := range win {
		s := &win[i]
		referencePostureOf(s, &e.posture[i])
		p := &e.posture[i]
		e.handRel[i] = [6]float64{p[chLX], p[chLY], p[chLZ], p[chRX], p[chRY], p[chRZ]}
		if s.left.Tracked && s.right.Tracked {
			tracked++
		}
		if s.hasGaze {
			gazeN++
			d := s.gaze.Dir
			gz[0].add(math.Atan2(float64(d[0]), -float64(d[2])))
			gz[1].add(math.Asin(referenceClamp(float64(d[1]), -1, 1)))
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
		e.angular = append(e.angular, referenceQuatAngle(a.head.Rot, b.head.Rot)/dt)
		var d float64
		for k := range 6 {
			x := e.handRel[i][k] - e.handRel[i-1][k]
			d += x * x
		}
		live.pathLength += math.Sqrt(d)
	}

	core := make([]float64, NumCoreFeatures)
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
		var m, acc referenceMoments
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
	var ang referenceMoments
	for _, v := range e.angular {
		ang.add(v)
	}
	core[offAngular] = math.Log(ang.mean() + 1e-3)
	tl := referenceHighBandRMS(win, func(s *sample) *Pose { return &s.left })
	tr := referenceHighBandRMS(win, func(s *sample) *Pose { return &s.right })
	th := referenceHighBandRMS(win, func(s *sample) *Pose { return &s.head })
	core[offTremor] = math.Log(tl + 1e-5)
	core[offTremor+1] = math.Log(tr + 1e-5)
	core[offTremor+2] = math.Log(th + 1e-5)
	live.tremorRMS = math.Min(tl, tr)
	core[offCoupling] = referenceCorrelation(e.speed[0], e.speed[1])
	core[offCoupling+1] = referenceCorrelation(e.speed[0], e.speed[2])
	core[offCoupling+2] = referenceCorrelation(e.speed[1], e.speed[2])

	f := Features{StartUS: win[0].timeUS, EndUS: win[n-1].timeUS, Core: core, live: live}
	if gazeN > n/2 {
		f.Gaze = []float64{gz[0].mean(), gz[0].std(), gz[1].mean(), gz[1].std(), gz[2].mean(), gz[2].std()}
	}
	if hrN > n/2 {
		f.Heart = []float64{hrm.mean(), hrm.std()}
	}
	return f, true
}

type referenceMoments struct {
	n      int
	mu, m2 float64
}

func (m *referenceMoments) add(x float64) {
	m.n++
	d := x - m.mu
	m.mu += d / float64(m.n)
	m.m2 += d * (x - m.mu)
}

func (m *referenceMoments) mean() float64 { return m.mu }

func (m *referenceMoments) std() float64 {
	if m.n < 2 {
		return 0
	}
	return math.Sqrt(m.m2 / float64(m.n-1))
}

func referenceQuatAngle(a, b [4]float32) float64 {
	d := math.Abs(float64(a[0]*b[0] + a[1]*b[1] + a[2]*b[2] + a[3]*b[3]))
	return 2 * math.Acos(math.Min(d, 1))
}

func referenceHighBandRMS(win []sample, pose func(*sample) *Pose) float64 {
	const half = 2
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

func referenceCorrelation(a, b []float64) float64 {
	n := min(len(a), len(b))
	if n < 2 {
		return 0
	}
	var ma, mb referenceMoments
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
