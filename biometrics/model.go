package biometrics

import (
	"errors"
	"fmt"
	"math"
)

// ErrNoBackground is returned by FitModel with fewer than two templates: a
// background model describes how people differ, which one person cannot.
var ErrNoBackground = errors.New("biometrics: background needs at least two templates")

// Model is the background a node scores against: how features vary within
// and between people (to whiten them) and a cohort of other people's templates (to
// normalize scores). It is fitted only from templates, so a node learns it
// from its own enrolled population, starting from a synthetic prior, and
// never from anyone's raw motion.
type Model struct {
	mean, scale []float64
	whiten      []float64 // d×d: y = whiten · ((x - mean) / scale)
	cohort      []cohortMember
}

type cohortMember struct {
	id string
	y  []float64
}

// NamedTemplate is a template and whose it is.
type NamedTemplate struct {
	ID       string
	Template *Template
}

// The within-person part of the scatter is shrunk towards its diagonal
// and floored: a background of a few dozen people cannot pin down every
// correlation of 58 features.
const (
	shrinkToDiagonal = 0.3
	scatterFloor     = 0.05
	// cauchyScale is the whitened distance at which the robust score starts
	// to discount a feature.
	cauchyScale = 1.0
)

// FitModel fits the whitening from the templates' total scatter (within
// plus between people) and keeps at most maxCohort of them as the
// normalization cohort.
//
// Why total and not within-person scatter alone: a template's covariance
// only sees how its person varies within one sitting, while a person's
// motion on another day drifts much further, and along the directions in
// which people differ from each other (how they stand, how high they hold
// their hands). Whitening by within-person scatter alone makes exactly
// those directions loudest. On the real cross-day recordings
// (docs/biometrics.md) adding the between-person scatter took the held-out
// half of the people from 18.8 % to 10.7 % EER at 10 s, and left the
// development half where it was.
func FitModel(background []NamedTemplate, maxCohort int) (*Model, error) {
	if len(background) < 2 {
		return nil, ErrNoBackground
	}
	var b Background
	for _, nt := range background {
		if err := b.AddTemplate(nt.Template); err != nil {
			return nil, fmt.Errorf("background template %q: %w", nt.ID, err)
		}
	}
	return FitBackground(&b, background, maxCohort)
}

// Embed maps a window's features into the whitened space, where the
// background population spreads about equally in every direction.
func (m *Model) Embed(f *Features) []float64 { return m.embedCore(f.Core) }

func (m *Model) embedCore(x []float64) []float64 {
	d := NumCoreFeatures
	// z lives on the stack: only y leaves (every window is embedded).
	var z [NumCoreFeatures]float64
	for i := range d {
		z[i] = (x[i] - m.mean[i]) / m.scale[i]
	}
	y := make([]float64, d)
	for i := range d {
		row := m.whiten[i*d : (i+1)*d]
		var s float64
		for j, v := range z[:] {
			s += row[j] * v
		}
		y[i] = s
	}
	return y
}

// Claim is a template prepared for scoring: embedded once, then compared
// with every window.
type Claim struct {
	id string
	y  []float64
	// zc, zd: mean and spread of the cohort's templates scored as probes
	// against this claim (Z-norm): some templates sit in crowded parts of
	// the space and attract everyone, others are far from all.
	zc, zd [2]float64
}

// Claim prepares the template of the avatar id for scoring; id keeps the
// avatar's own template out of its cohort.
func (m *Model) Claim(id string, t *Template) *Claim {
	c := &Claim{id: id, y: m.embedCore(t.Mean)}
	var sc, sc2, sd, sd2 float64
	k := 0
	for i := range m.cohort {
		if m.cohort[i].id == id {
			continue
		}
		a, b := rawScores(m.cohort[i].y, c.y)
		sc += a
		sc2 += a * a
		sd += b
		sd2 += b * b
		k++
	}
	if k >= 2 {
		kn := float64(k)
		c.zc = [2]float64{sc / kn, math.Sqrt(math.Max(sc2/kn-sc*sc/kn/kn, 1e-6))}
		c.zd = [2]float64{sd / kn, math.Sqrt(math.Max(sd2/kn-sd*sd/kn/kn, 1e-6))}
	}
	return c
}

// Score compares an embedded window with a claim. Two complementary
// similarities, cosine (the direction of a person's deviation from the
// crowd) and a robust Cauchy distance (how far, without letting one
// drifting feature dominate), are each normalized against the cohort and
// fused by averaging. The normalization is symmetric (S-norm): T-norm asks
// how this probe scores against other people's templates, Z-norm how other
// people's templates score against this claim; on the real recordings the
// Z half matters most for whole sessions, where some templates attract
// everyone. Impostors score near 0 with about unit spread (on synthetic
// people their mean is about −0.9); the enrolled person scores higher.
func (m *Model) Score(c *Claim, y []float64) float64 {
	cs, cd := rawScores(y, c.y)
	var sc, sc2, sd, sd2 float64
	k := 0
	for i := range m.cohort {
		if m.cohort[i].id == c.id {
			continue
		}
		a, b := rawScores(y, m.cohort[i].y)
		sc += a
		sc2 += a * a
		sd += b
		sd2 += b * b
		k++
	}
	if k < 2 {
		return (cs + cd) / 2
	}
	kn := float64(k)
	mc, md := sc/kn, sd/kn
	vc := math.Max(sc2/kn-mc*mc, 1e-6)
	vd := math.Max(sd2/kn-md*md, 1e-6)
	t := ((cs-mc)/math.Sqrt(vc) + (cd-md)/math.Sqrt(vd)) / 2
	if c.zc[1] == 0 {
		return t
	}
	z := ((cs-c.zc[0])/c.zc[1] + (cd-c.zd[0])/c.zd[1]) / 2
	return (t + z) / 2
}

// rawScores gives the cosine and the Cauchy similarity of two embedded
// vectors. The Cauchy part is −Σ log(1 + e²)/d; it is summed as the log of
// a running product, one logarithm per few dozen features instead of one
// per feature, which was a fifth of a streaming node's CPU: scoring runs
// once per cohort member per window. The product is flushed before it can
// overflow, and a term too large to multiply safely (or not finite) is
// taken on its own, so the sum is the same up to rounding.
func rawScores(y, t []float64) (cos, cauchy float64) {
	const flushAbove, aloneAbove = 1e150, 1e100
	var dot, ny, nt, logSum float64
	prod := 1.0
	for i := range y {
		dot += y[i] * t[i]
		ny += y[i] * y[i]
		nt += t[i] * t[i]
		e := (y[i] - t[i]) / cauchyScale
		e2 := e * e
		if !(e2 <= aloneAbove) {
			logSum += math.Log1p(e2)
			continue
		}
		prod *= 1 + e2
		if prod > flushAbove {
			logSum += math.Log(prod)
			prod = 1
		}
	}
	logSum += math.Log(prod)
	if ny > 0 && nt > 0 {
		cos = dot / math.Sqrt(ny*nt)
	}
	return cos, -logSum / float64(len(y))
}

// CohortSize is how many templates normalize scores.
func (m *Model) CohortSize() int { return len(m.cohort) }
