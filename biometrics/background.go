package biometrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Scatter is the second-order summary of one person's trusted windows,
// on any number of days: how many, their sum and the sum of their outer
// products. It is what the background learns a person's drift from, and
// it holds no motion: two people with the same moments of their window
// features have the same Scatter. The zero value is empty; Add fills it.
type Scatter struct {
	N   int
	Sum []float64 // NumCoreFeatures
	// Outer is Σ x xᵀ, its upper triangle packed row by row (see
	// packedLen): it is kept in every template and every live stream, so
	// the symmetric half is not stored twice.
	Outer []float64
}

// packedLen is the length of a packed upper triangle of a d×d matrix, and
// packedAt the index of its entry (i, j), i ≤ j.
func packedLen(d int) int { return d * (d + 1) / 2 }

func packedAt(d, i, j int) int { return i*d - i*(i-1)/2 + (j - i) }

// Add counts one window.
func (s *Scatter) Add(f *Features) { s.addCore(f.Core) }

func (s *Scatter) addCore(x []float64) {
	d := NumCoreFeatures
	if s.Sum == nil {
		s.Sum, s.Outer = make([]float64, d), make([]float64, packedLen(d))
	}
	s.N++
	for i, v := range x {
		s.Sum[i] += v
		row := s.Outer[packedAt(d, i, i) : packedAt(d, i, i)+d-i]
		for j, w := range x[i:] {
			row[j] += v * w
		}
	}
}

// Merge adds o's windows to s: statistics of two days, or two nodes, of
// the same person combine exactly.
func (s *Scatter) Merge(o *Scatter) {
	if o.N == 0 {
		return
	}
	d := NumCoreFeatures
	if s.Sum == nil {
		s.Sum, s.Outer = make([]float64, d), make([]float64, packedLen(d))
	}
	s.N += o.N
	for i, v := range o.Sum {
		s.Sum[i] += v
	}
	for i, v := range o.Outer {
		s.Outer[i] += v
	}
}

// moments returns the mean and the (unbiased) covariance.
func (s *Scatter) moments() (mean, cov []float64) {
	d := NumCoreFeatures
	n := float64(s.N)
	mean = make([]float64, d)
	for i, v := range s.Sum {
		mean[i] = v / n
	}
	cov = make([]float64, d*d)
	for i := range d {
		for j := range d {
			cov[i*d+j] = (s.Outer[packedAt(d, min(i, j), max(i, j))] - n*mean[i]*mean[j]) / (n - 1)
		}
	}
	return mean, cov
}

func (s *Scatter) validate() error {
	d := NumCoreFeatures
	if s.N < 2 || len(s.Sum) != d || len(s.Outer) != packedLen(d) {
		return fmt.Errorf("%w: scatter of %d windows and %d features", ErrTemplate, s.N, len(s.Sum))
	}
	if !allFinite(s.Sum) || !allFinite(s.Outer) {
		return fmt.Errorf("%w: non-finite scatter", ErrTemplate)
	}
	for i := range d {
		if s.Outer[packedAt(d, i, i)] < 0 {
			return fmt.Errorf("%w: negative scatter", ErrTemplate)
		}
	}
	return nil
}

func allFinite(xs []float64) bool {
	for _, v := range xs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// ErrTooFewToShare is returned by Background.Share when the node holds
// fewer people than the anonymity threshold.
var ErrTooFewToShare = errors.New("biometrics: too few people to share background statistics")

// DefaultShareMinPeople is the k of k-anonymity for shared background
// statistics: a node with fewer people shares nothing of its own.
const DefaultShareMinPeople = 5

// Background is the population-level sufficient statistics the background
// model is fitted from: for P people, the sum of their means, the sum of
// their means' outer products and the sum of their within-person
// covariances. Backgrounds of disjoint populations add (Merge), so nodes
// and trusted realms combine theirs without exchanging any person's
// template, statistics or motion: only sums over at least k people leave
// a node (Share).
type Background struct {
	People       int
	SumMean      []float64 // Σ μ_p
	SumMeanOuter []float64 // Σ μ_p μ_pᵀ
	SumWithin    []float64 // Σ C_p
}

func (b *Background) init() {
	if b.SumMean == nil {
		d := NumCoreFeatures
		b.SumMean, b.SumMeanOuter, b.SumWithin = make([]float64, d), make([]float64, d*d), make([]float64, d*d)
	}
}

// addPerson counts one person of mean mu; the caller adds their
// within-person covariance to SumWithin.
func (b *Background) addPerson(mu []float64) {
	b.init()
	d := NumCoreFeatures
	b.People++
	for i, v := range mu {
		b.SumMean[i] += v
		for j, w := range mu {
			b.SumMeanOuter[i*d+j] += v * w
		}
	}
}

// AddTemplate counts a person by their enrollment template: their
// within-person covariance is then one sitting's.
func (b *Background) AddTemplate(t *Template) error {
	if err := t.validate(); err != nil {
		return err
	}
	b.addPerson(t.Mean)
	d := NumCoreFeatures
	for i := range d {
		for j := range d {
			b.SumWithin[i*d+j] += t.Cov[packedAt(d, min(i, j), max(i, j))]
		}
	}
	return nil
}

// AddScatter counts a person by the statistics of their trusted windows,
// which may span many days: their within-person covariance then holds how
// they drift from day to day, which one sitting cannot show.
func (b *Background) AddScatter(s *Scatter) error {
	if err := s.validate(); err != nil {
		return err
	}
	mu, cov := s.moments()
	b.addPerson(mu)
	for i, v := range cov {
		b.SumWithin[i] += v
	}
	return nil
}

// Merge adds another population's statistics: the people must be
// disjoint, or someone counts twice.
func (b *Background) Merge(o *Background) { b.addScaled(o, o.People, 1) }

// addScaled adds o's sums times f, counted as people people. Merge's f is
// 1, which multiplies exactly, so its sums are those of plain addition.
func (b *Background) addScaled(o *Background, people int, f float64) {
	if o.People == 0 || people <= 0 {
		return
	}
	b.init()
	b.People += people
	for i, v := range o.SumMean {
		b.SumMean[i] += f * v
	}
	for i, v := range o.SumMeanOuter {
		b.SumMeanOuter[i] += f * v
	}
	for i, v := range o.SumWithin {
		b.SumWithin[i] += f * v
	}
}

// Share returns the statistics a node may send to others: a copy, if it
// holds at least minPeople people, and ErrTooFewToShare otherwise (a sum
// over one or two people would be their templates).
func (b *Background) Share(minPeople int) (*Background, error) {
	if minPeople < DefaultShareMinPeople {
		minPeople = DefaultShareMinPeople
	}
	if b.People < minPeople {
		return nil, fmt.Errorf("%w: %d people, need %d", ErrTooFewToShare, b.People, minPeople)
	}
	c := &Background{}
	c.Merge(b)
	return c, nil
}

func (b *Background) validate() error {
	d := NumCoreFeatures
	if b.People < 2 {
		return ErrNoBackground
	}
	if len(b.SumMean) != d || len(b.SumMeanOuter) != d*d || len(b.SumWithin) != d*d {
		return fmt.Errorf("%w: background of %d features", ErrTemplate, len(b.SumMean))
	}
	if !allFinite(b.SumMean) || !allFinite(b.SumMeanOuter) || !allFinite(b.SumWithin) {
		return fmt.Errorf("%w: non-finite background", ErrTemplate)
	}
	for i := range d {
		if b.SumWithin[i*d+i] < 0 || b.SumMeanOuter[i*d+i] < 0 {
			return fmt.Errorf("%w: negative variance in background", ErrTemplate)
		}
	}
	return nil
}

// ErrNotAPopulation is returned for statistics that no population of
// people gives: a sum of covariances, or a spread of means about their
// mean, that is not symmetric positive semi-definite.
var ErrNotAPopulation = errors.New("biometrics: statistics no population of people gives")

// populationTolerance is the rounding a population's sums may carry, in
// units of each feature's spread: an eigenvalue below minus it, or two
// halves of a matrix further apart than it, are not rounding.
const populationTolerance = 1e-6

// checkPopulation refuses statistics that sums over people cannot give
// (ErrNotAPopulation). The whitening inverts the total scatter: a
// direction of negative variance in a peer's share would be clamped to
// nothing and amplified a millionfold, and every genuine window would look
// like someone else's. Statistics that pass keep the total scatter at or
// above the model's floor in every direction, whatever else they say.
func (b *Background) checkPopulation() error {
	if err := b.validate(); err != nil {
		return err
	}
	d := NumCoreFeatures
	n := float64(b.People)
	within := make([]float64, d*d)
	between := make([]float64, d*d)
	for i := range d {
		for j := range d {
			within[i*d+j] = b.SumWithin[i*d+j] / n
			between[i*d+j] = b.SumMeanOuter[i*d+j]/n - (b.SumMean[i]/n)*(b.SumMean[j]/n)
		}
	}
	if !allFinite(within) || !allFinite(between) {
		return fmt.Errorf("%w: sums beyond the range of their numbers", ErrNotAPopulation)
	}
	// In units of each feature's spread, as the model standardizes: a
	// feature measured in metres and one in radians weigh alike.
	unit := make([]float64, d)
	for i := range d {
		unit[i] = math.Sqrt(math.Abs(within[i*d+i]) + math.Abs(between[i*d+i]))
		if unit[i] == 0 || math.IsInf(unit[i], 0) {
			unit[i] = 1
		}
	}
	for _, part := range []struct {
		name string
		m    []float64
	}{{"the within-person covariances", within}, {"the spread of the people's means", between}} {
		for i := range d {
			for j := range d {
				part.m[i*d+j] /= unit[i] * unit[j]
			}
		}
		for i := range d {
			if part.m[i*d+i] < -populationTolerance {
				return fmt.Errorf("%w: %s have a negative variance (feature %d)", ErrNotAPopulation, part.name, i)
			}
		}
		for i := range d {
			for j := i + 1; j < d; j++ {
				// Each entry is at most 1 in these units, or the matrix
				// has a negative direction; checked before the
				// eigenvalues, which would not survive a huge one.
				if math.Abs(part.m[i*d+j]) > 1+populationTolerance || math.Abs(part.m[j*d+i]) > 1+populationTolerance {
					return fmt.Errorf("%w: %s correlate features %d and %d beyond 1", ErrNotAPopulation, part.name, i, j)
				}
				if math.Abs(part.m[i*d+j]-part.m[j*d+i]) > populationTolerance {
					return fmt.Errorf("%w: %s are not symmetric (features %d and %d)", ErrNotAPopulation, part.name, i, j)
				}
				avg := (part.m[i*d+j] + part.m[j*d+i]) / 2
				part.m[i*d+j], part.m[j*d+i] = avg, avg
			}
		}
		vals, _ := symEigen(part.m, d)
		if low := slices.Min(vals); !(low >= -populationTolerance) {
			return fmt.Errorf("%w: %s have a direction of negative variance (%.3g)", ErrNotAPopulation, part.name, low)
		}
	}
	return nil
}

// mergeAtMost adds o's people as Merge does, counted as at most most
// people: beyond that, its sums are scaled down so that they weigh as much
// as most people of the same mean, spread and within-person scatter.
func (b *Background) mergeAtMost(o *Background, most int) {
	if o.People <= most {
		b.Merge(o)
		return
	}
	b.addScaled(o, most, float64(most)/float64(o.People))
}

// FitBackground fits the standardization and whitening from population
// statistics and keeps at most maxCohort of cohort as the normalization
// cohort. The cohort is separate because it needs templates, which never
// leave their node: a federated model whitens with everyone's statistics
// and normalizes against the node's own people.
func FitBackground(b *Background, cohort []NamedTemplate, maxCohort int) (*Model, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	d := NumCoreFeatures
	n := float64(b.People)
	m := &Model{mean: make([]float64, d), scale: make([]float64, d)}
	for i, v := range b.SumMean {
		m.mean[i] = v / n
	}
	within := make([]float64, d*d)
	between := make([]float64, d*d)
	for i := range d {
		for j := range d {
			within[i*d+j] = b.SumWithin[i*d+j] / n
			between[i*d+j] = b.SumMeanOuter[i*d+j]/n - m.mean[i]*m.mean[j]
		}
	}
	for i := range d {
		m.scale[i] = math.Sqrt(math.Max(between[i*d+i], 0) + within[i*d+i])
		if m.scale[i] < 1e-9 {
			m.scale[i] = 1
		}
	}
	// The total scatter in standardized units: the within-person part
	// regularized, plus the between-person part as it is (it has rank
	// below the number of people, and adds to a full-rank matrix).
	s := make([]float64, d*d)
	for i := range d {
		for j := range d {
			w := within[i*d+j]
			if i != j {
				w *= 1 - shrinkToDiagonal
			}
			s[i*d+j] = (w + between[i*d+j]) / (m.scale[i] * m.scale[j])
		}
		s[i*d+i] += scatterFloor
	}
	m.whiten = inverseSqrt(s, d)
	for _, nt := range cohort {
		if len(m.cohort) >= maxCohort {
			break
		}
		if err := nt.Template.validate(); err != nil {
			return nil, fmt.Errorf("cohort template %q: %w", nt.ID, err)
		}
		m.cohort = append(m.cohort, cohortMember{id: nt.ID, y: m.embedCore(nt.Template.Mean)})
	}
	return m, nil
}

// statsVersion is the first byte of a marshaled Scatter or Background;
// the second says which of the two it is, so that one is never read as the
// other.
const (
	statsVersion    = 1
	kindScatter     = 's'
	kindBackground  = 'b'
	statsHeaderSize = 1 + 1 + 2 + 4
)

// MarshalBinary encodes the scatter: version, kind, feature count, window
// count, then the sum and the outer products as little-endian float64.
func (s *Scatter) MarshalBinary() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s.appendBinary(nil), nil
}

// appendBinary appends MarshalBinary's encoding of a valid s to b.
func (s *Scatter) appendBinary(b []byte) []byte {
	return appendFloats(appendStatsHeader(b, kindScatter, s.N), s.Sum, s.Outer)
}

// binaryLen is the length of MarshalBinary's encoding of s.
func (s *Scatter) binaryLen() int { return statsHeaderSize + 8*(len(s.Sum)+len(s.Outer)) }

// UnmarshalBinary decodes what MarshalBinary wrote; anything else is
// ErrTemplate and leaves s unchanged.
func (s *Scatter) UnmarshalBinary(b []byte) error {
	n, blocks, err := readStats(b, kindScatter, NumCoreFeatures, packedLen(NumCoreFeatures))
	if err != nil {
		return err
	}
	out := Scatter{N: n, Sum: blocks[0], Outer: blocks[1]}
	if err := out.validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// MarshalBinary encodes the background: version, kind, feature count,
// number of people, then the three sums as little-endian float64.
func (b *Background) MarshalBinary() ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	return appendFloats(appendStatsHeader(nil, kindBackground, b.People), b.SumMean, b.SumMeanOuter, b.SumWithin), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; anything else is
// ErrTemplate and leaves b unchanged.
func (b *Background) UnmarshalBinary(data []byte) error {
	d := NumCoreFeatures
	n, blocks, err := readStats(data, kindBackground, d, d*d, d*d)
	if err != nil {
		return err
	}
	out := Background{People: n, SumMean: blocks[0], SumMeanOuter: blocks[1], SumWithin: blocks[2]}
	if err := out.validate(); err != nil {
		return err
	}
	*b = out
	return nil
}

func appendStatsHeader(b []byte, kind byte, n int) []byte {
	b = append(b, statsVersion, kind)
	b = binary.LittleEndian.AppendUint16(b, uint16(NumCoreFeatures))
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

func appendFloats(b []byte, blocks ...[]float64) []byte {
	for _, s := range blocks {
		for _, v := range s {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	}
	return b
}

// readStats checks the header and splits the rest into blocks of the
// given lengths.
func readStats(b []byte, kind byte, sizes ...int) (int, [][]float64, error) {
	if len(b) < statsHeaderSize {
		return 0, nil, fmt.Errorf("%w: statistics of %d bytes", ErrTemplate, len(b))
	}
	if b[0] != statsVersion || b[1] != kind {
		return 0, nil, fmt.Errorf("%w: statistics version %d kind %q", ErrTemplate, b[0], b[1])
	}
	if d := int(binary.LittleEndian.Uint16(b[2:])); d != NumCoreFeatures {
		return 0, nil, fmt.Errorf("%w: %d features, want %d", ErrTemplate, d, NumCoreFeatures)
	}
	n := binary.LittleEndian.Uint32(b[4:])
	if n > math.MaxInt32 {
		return 0, nil, fmt.Errorf("%w: count %d", ErrTemplate, n)
	}
	rest := b[statsHeaderSize:]
	want := 0
	for _, size := range sizes {
		want += 8 * size
	}
	if len(rest) != want {
		return 0, nil, fmt.Errorf("%w: statistics body of %d bytes, want %d", ErrTemplate, len(rest), want)
	}
	blocks := make([][]float64, len(sizes))
	for k, size := range sizes {
		blocks[k] = readFloats(rest, size)
		rest = rest[8*size:]
	}
	return int(n), blocks, nil
}
