package synth

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// Person is one synthetic body and way of moving.
type Person struct {
	Seed        int64
	Height      float64 // m
	ArmLength   float64 // m
	Shoulders   float64 // m, width
	RightHanded bool
	// Activity scales how far the hands wander from rest; Tempo is their
	// typical frequency of movement (Hz).
	Activity, Tempo float64
	// HeadFollow is how much the head turns after the dominant hand.
	HeadFollow float64
	// TremorHz and TremorMM: physiological tremor of the hands.
	TremorHz, TremorMM float64
	// HasGaze, HasHeartRate: whether this person's headset sends them.
	HasGaze, HasHeartRate bool

	rest      [2][3]float64 // hands' rest offsets from the head (right, up, forward)
	grip      [2][3]float64 // controller grip: yaw, pitch, roll (rad)
	pitchBias float64
	rollBias  float64
	pupilMM   float64
	heartRate float64
}

// NewPerson draws a person from seed.
func NewPerson(seed int64) *Person {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	p := &Person{Seed: seed}
	p.Height = clamp(1.72+0.09*r.NormFloat64(), 1.5, 1.98)
	p.ArmLength = 0.44 * p.Height * (1 + 0.04*r.NormFloat64())
	p.Shoulders = 0.23 * p.Height * (1 + 0.05*r.NormFloat64())
	p.RightHanded = r.Float64() < 0.9
	p.Activity = 0.4 + 0.8*r.Float64()
	p.Tempo = 0.25 + 0.45*r.Float64()
	p.HeadFollow = 0.2 + 0.6*r.Float64()
	p.TremorHz = 8 + 4*r.Float64()
	p.TremorMM = 0.1 + 0.5*r.Float64()
	p.HasGaze = r.Float64() < 0.5
	p.HasHeartRate = r.Float64() < 0.5
	for h := range 2 {
		side := -1.0
		if h == 1 {
			side = 1
		}
		p.rest[h] = [3]float64{
			side * (p.Shoulders/2 + 0.03 + 0.05*r.Float64()),
			-(0.35 + 0.25*r.Float64()) * p.Height / 1.72,
			(0.1 + 0.3*r.Float64()) * p.ArmLength / 0.75,
		}
		p.grip[h] = [3]float64{0.25 * r.NormFloat64(), -0.3 + 0.25*r.NormFloat64(), 0.2 * r.NormFloat64()}
	}
	p.pitchBias = -0.1 + 0.08*r.NormFloat64()
	p.rollBias = 0.04 * r.NormFloat64()
	p.pupilMM = 3 + 2*r.Float64()
	p.heartRate = 60 + 30*r.Float64()
	return p
}

// Session starts a session: session n of the person, with the drift of
// that day (posture, pace) and the room's calibration (floor height, where
// the play area is and which way it faces) drawn from the seed and n.
func (p *Person) Session(n int) *Generator {
	r := rand.New(rand.NewPCG(uint64(p.Seed), uint64(n)+1))
	s := *p
	for h := range 2 {
		for k := range 3 {
			s.rest[h][k] += 0.015 * r.NormFloat64()
			s.grip[h][k] += 0.04 * r.NormFloat64()
		}
	}
	s.pitchBias += 0.03 * r.NormFloat64()
	s.Activity *= 1 + 0.1*r.NormFloat64()
	s.Tempo *= 1 + 0.08*r.NormFloat64()
	g := &Generator{
		p:       &s,
		rng:     rand.New(rand.NewPCG(uint64(p.Seed)^0xabcdef, uint64(n)*7919+3)),
		floor:   0.3 * (2*r.Float64() - 1),
		origin:  [2]float64{4 * r.NormFloat64(), 4 * r.NormFloat64()},
		worldY:  2 * math.Pi * r.Float64(),
		neckRng: rand.New(rand.NewPCG(uint64(p.Seed)^0x9ec4, uint64(n)*7919+5)),
		timeUS:  uint64(1_000_000 + r.IntN(1_000_000_000)),
		tremPhs: [2][3]float64{{r.Float64() * 6, r.Float64() * 6, r.Float64() * 6}, {r.Float64() * 6, r.Float64() * 6, r.Float64() * 6}},
	}
	for h := range 2 {
		g.hand[h].x = s.rest[h]
		roll := axisQ([3]float64{0, 0, -1}, s.grip[h][2])
		g.gripRoll[h] = [2]float64{roll[2], roll[3]}
	}
	return g
}

// oscillator is a damped spring driven by noise: smooth positions with
// human-like speeds, unlike a random walk.
type oscillator struct{ x, v [3]float64 }

// sqrtDt is math.Sqrt(dt), which every oscillator of a step shares. The
// factors that do not change over the three axes are taken once, each
// the same product as when it was written inside the loop, so that the
// motion stays bit for bit what it was (TestMotionGolden).
func (o *oscillator) step(rng *rand.Rand, rest [3]float64, omega, sigma, dt, sqrtDt float64) {
	const zeta = 0.7
	spring, damping, noise := -omega*omega, 2*zeta*omega, sigma*sqrtDt
	for k := range 3 {
		a := spring*(o.x[k]-rest[k]) - damping*o.v[k]
		o.v[k] += a*dt + noise*rng.NormFloat64()
		o.x[k] += o.v[k] * dt
	}
}

// The head sways on the neck, apart from the shoulders and so from the
// hands, by about a centimetre each way (the spring's spread,
// neckSigma/sqrt(4·0.7·ω³), is 1 cm) over a few seconds. Without it a
// synthetic person whose hands barely move has, relative to the head in
// its yaw frame (the replay registry's motion points), nothing but the
// head's yaw wobble: one angle, tracing one arc, which the person then
// retraces within a centimetre whenever the head turns across it the same
// way again, and the replay registry rightly called that a replay of the
// person's own motion of seconds before (in long load runs; real people's
// heads move on their shoulders).
const (
	neckHz    = 0.2
	neckSigma = 0.0236
)

// defaultMaxStep is the longest step the motion is integrated over, in
// seconds: a few per frame at 72 Hz, so that what the evaluation measures
// does not depend on the frame rate it is sampled at.
const defaultMaxStep = 0.005

// Generator produces one session's frames.
type Generator struct {
	p       *Person
	maxStep float64 // seconds; 0 is defaultMaxStep
	rng     *rand.Rand
	floor   float64
	origin  [2]float64
	worldY  float64
	timeUS  uint64
	seq     uint32

	body oscillator // x, z position; yaw in [1]
	head oscillator // yaw offset, pitch, roll
	// neck is where the head sways on the shoulders (right, up,
	// forward), which carry the hands. It draws on neckRng, a stream of
	// its own, so that every other part of the motion is what it was
	// before the head had a neck.
	neck     oscillator
	neckRng  *rand.Rand
	hand     [2]oscillator
	gaze     oscillator
	tremPhs  [2][3]float64
	heartVar float64
	// gripRoll is each controller's roll about -Z, fixed for the session,
	// as turn takes it: minus the sine and the cosine of half the angle.
	gripRoll [2][2]float64
}

// SetMaxStep sets the longest step the motion is integrated over
// (default 5 ms). One step a frame (the frame's interval) gives motion of
// the same kind, the springs being slow against any frame rate a headset
// streams at, for about a third of the work: what a load generator that
// moves thousands of people needs, and what an evaluation must not use,
// since its figures are measured on the default.
func (g *Generator) SetMaxStep(d time.Duration) { g.maxStep = d.Seconds() }

// TimeUS is the device time of the last frame.
func (g *Generator) TimeUS() uint64 { return g.timeUS }

// SetTime moves the device clock, for example to continue another
// generator's stream (a change of wearer on the same headset).
func (g *Generator) SetTime(us uint64, seq uint32) { g.timeUS, g.seq = us, seq }

// Next advances by dt and returns the frame at the new time.
func (g *Generator) Next(dt time.Duration) biometrics.Frame {
	var f biometrics.Frame
	var gaze *biometrics.Gaze
	if g.p.HasGaze {
		gaze = new(biometrics.Gaze)
	}
	g.NextInto(dt, &f, gaze)
	return f
}

// NextInto is Next writing the frame into f, and its gaze, for a person
// whose headset has eye tracking, into gaze (which f.Gaze then points to)
// instead of a new one: for a caller that is done with each frame before
// the next, such as a load generator encoding thousands of people's.
func (g *Generator) NextInto(dt time.Duration, f *biometrics.Frame, gaze *biometrics.Gaze) {
	maxStep := defaultMaxStep
	if g.maxStep > 0 {
		maxStep = g.maxStep
	}
	total := dt.Seconds()
	for total > 1e-9 {
		h := math.Min(total, maxStep)
		g.step(h)
		total -= h
	}
	g.timeUS += uint64(dt / time.Microsecond)
	g.seq++
	g.frame(f, gaze)
}

// Frames returns n frames at about hz, with the small timing jitter of a
// real headset's compositor.
func (g *Generator) Frames(n int, hz float64) []biometrics.Frame {
	out := make([]biometrics.Frame, n)
	period := time.Duration(float64(time.Second) / hz)
	for i := range out {
		jitter := time.Duration((g.rng.Float64() - 0.5) * 0.1 * float64(period))
		out[i] = g.Next(period + jitter)
	}
	return out
}

func (g *Generator) step(dt float64) {
	p := g.p
	sqrtDt := math.Sqrt(dt)
	g.body.step(g.rng, [3]float64{}, 2*math.Pi*0.05, 0.15, dt, sqrtDt)
	g.head.step(g.rng, [3]float64{0, p.pitchBias, p.rollBias}, 2*math.Pi*0.3, 0.25, dt, sqrtDt)
	omega := 2 * math.Pi * p.Tempo
	tremorTurn, tremorNoise := 2*math.Pi*p.TremorHz*dt, 0.3*sqrtDt
	for h := range 2 {
		sigma := 0.12 * p.Activity
		if (h == 1) == p.RightHanded {
			sigma *= 1.4
		}
		g.hand[h].step(g.rng, p.rest[h], omega, sigma, dt, sqrtDt)
		for k := range 3 {
			g.tremPhs[h][k] += tremorTurn + tremorNoise*g.rng.NormFloat64()
		}
	}
	g.gaze.step(g.rng, [3]float64{}, 2*math.Pi*0.8, 0.4, dt, sqrtDt)
	g.neck.step(g.neckRng, [3]float64{}, 2*math.Pi*neckHz, neckSigma, dt, sqrtDt)
	g.heartVar += -0.05*g.heartVar*dt + 0.5*sqrtDt*g.rng.NormFloat64()
}

// frame writes the frame of the present state into f, its gaze into gaze.
func (g *Generator) frame(f *biometrics.Frame, gaze *biometrics.Gaze) {
	p := g.p
	dom := 0
	if p.RightHanded {
		dom = 1
	}
	bodyYaw := g.worldY + 0.6*g.body.x[1]
	headYaw := bodyYaw + g.head.x[0] - p.HeadFollow*(g.hand[dom].x[0]-p.rest[dom][0])
	pitch := clamp(g.head.x[1], -1.2, 1.2)
	roll := g.head.x[2]
	rollS, rollC := math.Sincos(roll / 2)
	headRot, ok := turn(headYaw, pitch, -rollS, rollC)
	if !ok {
		headRot = mul(mul(yawQ(headYaw), axisQ([3]float64{1, 0, 0}, pitch)), axisQ([3]float64{0, 0, -1}, roll))
	}
	eye := 0.936 * p.Height
	// shoulders is where the head would be without the neck's sway: the
	// hands move from there, the head sways around it.
	shoulders := [3]float64{g.origin[0] + 0.4*g.body.x[0], eye + g.floor + 0.01*g.head.x[1], g.origin[1] + 0.4*g.body.x[2]}
	right, fwd := yawAxes(bodyYaw)
	headPos := shoulders
	for k := range 3 {
		headPos[k] += right[k]*g.neck.x[0] + fwd[k]*g.neck.x[2]
	}
	headPos[1] += g.neck.x[1]
	*f = biometrics.Frame{TimeUS: g.timeUS, Seq: g.seq}
	f.Head = pose(headPos, headRot)
	for h := range 2 {
		x := g.hand[h].x
		var pos [3]float64
		for k := range 3 {
			pos[k] = shoulders[k] + right[k]*x[0] + fwd[k]*x[2]
		}
		pos[1] += x[1]
		a := p.TremorMM / 1000
		for k := range 3 {
			pos[k] += a*math.Sin(g.tremPhs[h][k]) + 0.00005*g.rng.NormFloat64()
		}
		gr := p.grip[h]
		yaw, pitch := bodyYaw+gr[0]+0.3*g.hand[h].v[0], gr[1]+0.5*g.hand[h].v[1]
		rot, ok := turn(yaw, pitch, g.gripRoll[h][0], g.gripRoll[h][1])
		if !ok {
			rot = mul(mul(mul(yawQ(yaw), axisQ([3]float64{1, 0, 0}, pitch)), axisQ([3]float64{0, 0, -1}, gr[2])), [4]float64{0, 0, 0, 1})
		}
		if h == 0 {
			f.Left = pose(pos, rot)
		} else {
			f.Right = pose(pos, rot)
		}
	}
	if p.HasGaze {
		d := [3]float64{0.3 * math.Tanh(g.gaze.x[0]), 0.3 * math.Tanh(g.gaze.x[1]), -1}
		n := math.Sqrt(d[0]*d[0] + d[1]*d[1] + d[2]*d[2])
		*gaze = biometrics.Gaze{Dir: [3]float32{float32(d[0] / n), float32(d[1] / n), float32(d[2] / n)}, PupilMM: float32(p.pupilMM + 0.3*math.Tanh(g.gaze.x[2]))}
		f.Gaze = gaze
	}
	if p.HasHeartRate {
		f.HeartRate = float32(clamp(p.heartRate+g.heartVar, 40, 180))
	}
}

func pose(pos [3]float64, q [4]float64) biometrics.Pose {
	return biometrics.Pose{
		Pos:     [3]float32{float32(pos[0]), float32(pos[1]), float32(pos[2])},
		Rot:     [4]float32{float32(q[0]), float32(q[1]), float32(q[2]), float32(q[3])},
		Tracked: true,
	}
}

// yawQ turns about +Y (up) by a.
func yawQ(a float64) [4]float64 { return axisQ([3]float64{0, 1, 0}, a) }

// axisQ and yawAxes take the sine and cosine of an angle together: one
// argument reduction instead of two, with results bit for bit those of
// math.Sin and math.Cos (TestSincosIsSinAndCos), so that every synthetic
// person moves exactly as before.
func axisQ(axis [3]float64, a float64) [4]float64 {
	s, c := math.Sincos(a / 2)
	return [4]float64{axis[0] * s, axis[1] * s, axis[2] * s, c}
}

// yawAxes returns the horizontal right and forward directions after a
// turn by a (OpenXR: forward is -Z).
func yawAxes(a float64) (right, fwd [3]float64) {
	s, c := math.Sincos(a)
	return [3]float64{c, 0, -s}, [3]float64{-s, 0, -c}
}

// turn is yawQ(yaw), times axisQ(+X, pitch), times a roll about -Z given
// as rollZ and rollW (its quaternion's z and w: minus the sine and the
// cosine of half the roll), as mul computes that product, written out
// without the terms mul multiplies by an axis's zeros. A term that is
// zero leaves a sum that is not zero unchanged, and a product of a
// component and one is that component, so wherever the result has no
// zero component it is bit for bit mul's (the same roundings in the same
// order); where one is zero its sign may not be, and ok is false, for
// the caller to take mul's product. The same holds for a product with the
// identity after it. TestTurnIsMul checks this on angles that make
// components zero as well as on random ones.
func turn(yaw, pitch, rollZ, rollW float64) (q [4]float64, ok bool) {
	ys, yc := math.Sincos(yaw / 2)
	ps, pc := math.Sincos(pitch / 2)
	// yawQ(yaw) times axisQ(+X, pitch).
	x, y, z, w := yc*ps, ys*pc, -(ys * ps), yc*pc
	// That times the roll, whose x and y are zero.
	q = [4]float64{x*rollW + y*rollZ, -(x * rollZ) + y*rollW, w*rollZ + z*rollW, w*rollW - z*rollZ}
	for _, v := range q {
		if v == 0 || v != v {
			return q, false
		}
	}
	return q, true
}

func mul(a, b [4]float64) [4]float64 {
	return [4]float64{
		a[3]*b[0] + a[0]*b[3] + a[1]*b[2] - a[2]*b[1],
		a[3]*b[1] - a[0]*b[2] + a[1]*b[3] + a[2]*b[0],
		a[3]*b[2] + a[0]*b[1] - a[1]*b[0] + a[2]*b[3],
		a[3]*b[3] - a[0]*b[0] - a[1]*b[1] - a[2]*b[2],
	}
}

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// Prior returns templates of n synthetic people (seeds from seed on), each
// enrolled from d of motion: the background a realm node starts from
// before it has enrolled people of its own.
func Prior(n int, seed int64, d time.Duration, cfg biometrics.Config) ([]biometrics.NamedTemplate, error) {
	var out []biometrics.NamedTemplate
	for i := range n {
		p := NewPerson(seed + int64(i))
		frames := p.Session(1).Frames(int(d.Seconds()*72), 72)
		ws, err := biometrics.Windows(frames, cfg)
		if err != nil {
			return nil, err
		}
		t, err := biometrics.NewTemplate(ws, time.Time{})
		if err != nil {
			return nil, err
		}
		out = append(out, biometrics.NamedTemplate{ID: "synthetic-prior-" + strconv.FormatInt(seed+int64(i), 10), Template: t})
	}
	return out, nil
}
