package biometrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// templateVersion is the first byte of a marshaled Template; bump it when
// the layout or the meaning of the features changes, since a template of
// one feature set cannot be scored against another. Version 2 added the
// trusted windows' statistics (Template.Drift) after the blocks of
// version 1, which still decodes, without them.
const (
	templateVersion   = 2
	templateVersionV1 = 1
)

// ErrTemplate reports a template that cannot be decoded or used.
var ErrTemplate = errors.New("biometrics: invalid template")

// Template is what enrollment keeps of a person: the statistics of their
// window features, never the motion itself. The mean locates the person;
// the covariance tells the background model how much each person varies
// from window to window.
type Template struct {
	Created, Updated time.Time
	// Windows is how many windows the statistics summarize.
	Windows int
	// Mean and Cov of the core features. Cov is symmetric, so only its
	// upper triangle is held, packed row by row (packedLen, packedAt; the
	// stored form is the whole NumCoreFeatures² matrix, row-major): the
	// node keeps one per enrolled person, connected or not. It is never
	// written once the template is built (adaptation moves only the mean),
	// so copies of a template share it: a node holds one covariance per
	// person, not one per stream and one for the model.
	Mean []float64
	Cov  []float64
	// GazeMean and HeartMean are the optional blocks' means, when the
	// enrolling headset sent them.
	GazeMean, HeartMean []float64
	// Drift is the second-order statistics of the windows the person has
	// been trusted with, enrollment's and every adapted one since, on any
	// number of days: how this person drifts, for the background model
	// (Config.DriftBackground). Nil in a template stored before it was
	// kept.
	Drift *Scatter
}

// NewTemplate builds a template from enrollment windows. It needs at least
// two windows.
func NewTemplate(windows []Features, at time.Time) (*Template, error) {
	if len(windows) < 2 {
		return nil, fmt.Errorf("%w: %d windows, need at least 2", ErrTemplate, len(windows))
	}
	d := NumCoreFeatures
	t := &Template{Created: at, Updated: at, Windows: len(windows), Mean: make([]float64, d), Cov: make([]float64, packedLen(d))}
	for _, w := range windows {
		for i, v := range w.Core {
			t.Mean[i] += v
		}
	}
	for i := range t.Mean {
		t.Mean[i] /= float64(len(windows))
	}
	for _, w := range windows {
		for i := range d {
			di := w.Core[i] - t.Mean[i]
			row := t.Cov[packedAt(d, i, i):]
			for j := i; j < d; j++ {
				row[j-i] += di * (w.Core[j] - t.Mean[j])
			}
		}
	}
	for k := range t.Cov {
		t.Cov[k] /= float64(len(windows) - 1)
	}
	t.GazeMean = meanOf(windows, func(f *Features) []float64 { return f.Gaze })
	t.HeartMean = meanOf(windows, func(f *Features) []float64 { return f.Heart })
	t.Drift = &Scatter{}
	for i := range windows {
		t.Drift.Add(&windows[i])
	}
	return t, nil
}

func meanOf(windows []Features, block func(*Features) []float64) []float64 {
	var sum []float64
	n := 0
	for i := range windows {
		b := block(&windows[i])
		if b == nil {
			continue
		}
		if sum == nil {
			sum = make([]float64, len(b))
		}
		for k := range min(len(b), len(sum)) {
			sum[k] += b[k]
		}
		n++
	}
	// Only a block present in most windows describes the person.
	if n == 0 || n < len(windows)/2 {
		return nil
	}
	for k := range sum {
		sum[k] /= float64(n)
	}
	return sum
}

// adapt moves the template's mean towards a window the stream trusts. The
// covariance is left alone: one person's drift should not reshape the
// node's idea of within-person variation.
func (t *Template) adapt(w *Features, rate float64, at time.Time) {
	for i, v := range w.Core {
		t.Mean[i] += rate * (v - t.Mean[i])
	}
	if t.Drift != nil {
		t.Drift.Add(w)
	}
	t.Updated = at
}

// clone copies what adaptation changes and shares the covariance, which
// nothing writes.
func (t *Template) clone() *Template {
	c := *t
	c.Mean = append([]float64(nil), t.Mean...)
	c.GazeMean = append([]float64(nil), t.GazeMean...)
	c.HeartMean = append([]float64(nil), t.HeartMean...)
	if t.GazeMean == nil {
		c.GazeMean = nil
	}
	if t.HeartMean == nil {
		c.HeartMean = nil
	}
	if t.Drift != nil {
		d := *t.Drift
		d.Sum = append([]float64(nil), t.Drift.Sum...)
		d.Outer = append([]float64(nil), t.Drift.Outer...)
		c.Drift = &d
	}
	return &c
}

// cloneWithoutDrift is clone without the drift statistics, for a holder
// that never reads them.
func (t *Template) cloneWithoutDrift() *Template {
	c := *t
	c.Drift = nil
	return c.clone()
}

func (t *Template) validate() error {
	d := NumCoreFeatures
	if len(t.Mean) != d || len(t.Cov) != packedLen(d) {
		return fmt.Errorf("%w: %d features, want %d", ErrTemplate, len(t.Mean), d)
	}
	if t.Windows < 2 {
		return fmt.Errorf("%w: %d windows", ErrTemplate, t.Windows)
	}
	for _, s := range [][]float64{t.Mean, t.Cov, t.GazeMean, t.HeartMean} {
		for _, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: non-finite value", ErrTemplate)
			}
		}
	}
	for i := range d {
		if t.Cov[packedAt(d, i, i)] < 0 {
			return fmt.Errorf("%w: negative variance", ErrTemplate)
		}
	}
	if t.Drift != nil {
		return t.Drift.validate()
	}
	return nil
}

// MarshalBinary encodes the template: version, feature count, times,
// window count, then float64 blocks each preceded by its length.
func (t *Template) MarshalBinary() ([]byte, error) { return t.AppendBinary(nil) }

// AppendBinary appends what MarshalBinary returns to b, growing it once:
// a template is about 42 KB, and appending it value by value from nothing
// allocated five times that (a node storing a thousand templates at once
// felt it).
func (t *Template) AppendBinary(b []byte) ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if t.Drift != nil {
		if err := t.Drift.validate(); err != nil {
			return nil, err
		}
	}
	b = slices.Grow(b, t.binaryLen())
	b = append(b, templateVersion)
	b = binary.LittleEndian.AppendUint16(b, NumCoreFeatures)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Created.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Updated.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Windows))
	b = appendBlock(b, t.Mean)
	// The stored covariance is the whole matrix, row-major, written from
	// the packed upper triangle without unpacking it first.
	d := NumCoreFeatures
	b = binary.LittleEndian.AppendUint32(b, uint32(d*d))
	for i := range d {
		for j := range d {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.Cov[packedAt(d, min(i, j), max(i, j))]))
		}
	}
	b = appendBlock(b, t.GazeMean)
	b = appendBlock(b, t.HeartMean)
	if t.Drift == nil {
		return binary.LittleEndian.AppendUint32(b, 0), nil
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Drift.binaryLen()))
	return t.Drift.appendBinary(b), nil
}

// binaryLen is the length of the template's encoding.
func (t *Template) binaryLen() int {
	n := 1 + 2 + 8 + 8 + 4 + 4*4 + 8*(len(t.Mean)+NumCoreFeatures*NumCoreFeatures+len(t.GazeMean)+len(t.HeartMean)) + 4
	if t.Drift != nil {
		n += t.Drift.binaryLen()
	}
	return n
}

// appendBlock appends a float64 block preceded by its length.
func appendBlock(b []byte, s []float64) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return appendFloats(b, s)
}

// readFloats reads n little-endian float64s from b, which holds them.
func readFloats(b []byte, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// readBlock reads a block appendBlock wrote, of at most limit values, and
// returns the bytes after it; an empty block is nil.
func readBlock(b []byte, limit int) ([]float64, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if n > uint32(limit) || uint64(len(b)) < 8*uint64(n) {
		return nil, nil, fmt.Errorf("a block of %d values", n)
	}
	if n == 0 {
		return nil, b, nil
	}
	return readFloats(b, int(n)), b[8*n:], nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; anything else, including
// a template of another version or feature set, is ErrTemplate.
func (t *Template) UnmarshalBinary(b []byte) error {
	const head = 1 + 2 + 8 + 8 + 4
	if len(b) < head {
		return fmt.Errorf("%w: %d bytes", ErrTemplate, len(b))
	}
	if b[0] != templateVersion && b[0] != templateVersionV1 {
		return fmt.Errorf("%w: version %d", ErrTemplate, b[0])
	}
	if n := binary.LittleEndian.Uint16(b[1:]); n != NumCoreFeatures {
		return fmt.Errorf("%w: %d features, want %d", ErrTemplate, n, NumCoreFeatures)
	}
	var out Template
	out.Created = time.Unix(0, int64(binary.LittleEndian.Uint64(b[3:]))).UTC()
	out.Updated = time.Unix(0, int64(binary.LittleEndian.Uint64(b[11:]))).UTC()
	out.Windows = int(binary.LittleEndian.Uint32(b[19:]))
	rest := b[head:]
	limits := []int{NumCoreFeatures, NumCoreFeatures * NumCoreFeatures, 16, 16}
	blocks := make([][]float64, 4)
	for k := range blocks {
		var err error
		if blocks[k], rest, err = readBlock(rest, limits[k]); err != nil {
			return fmt.Errorf("%w: block %d: %w", ErrTemplate, k, err)
		}
	}
	if b[0] != templateVersionV1 {
		if len(rest) < 4 {
			return fmt.Errorf("%w: truncated", ErrTemplate)
		}
		n := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if n > uint32(len(rest)) {
			return fmt.Errorf("%w: statistics of %d bytes, %d left", ErrTemplate, n, len(rest))
		}
		if n > 0 {
			out.Drift = &Scatter{}
			if err := out.Drift.UnmarshalBinary(rest[:n]); err != nil {
				return err
			}
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrTemplate, len(rest))
	}
	cov, err := packSymmetric(blocks[1], NumCoreFeatures)
	if err != nil {
		return err
	}
	out.Mean, out.Cov, out.GazeMean, out.HeartMean = blocks[0], cov, blocks[2], blocks[3]
	if err := out.validate(); err != nil {
		return err
	}
	*t = out
	return nil
}

// packSymmetric keeps the upper triangle of a stored d×d covariance. One
// that is not exactly symmetric was not written by NewTemplate, and is
// refused rather than half-read.
func packSymmetric(full []float64, d int) ([]float64, error) {
	if len(full) != d*d {
		return nil, fmt.Errorf("%w: covariance of %d values, want %d", ErrTemplate, len(full), d*d)
	}
	packed := make([]float64, 0, packedLen(d))
	for i := range d {
		for j := i; j < d; j++ {
			if full[i*d+j] != full[j*d+i] {
				return nil, fmt.Errorf("%w: covariance not symmetric at (%d, %d)", ErrTemplate, i, j)
			}
			packed = append(packed, full[i*d+j])
		}
	}
	return packed, nil
}

// unpackSymmetric is the whole d×d matrix, row-major, of a packed upper
// triangle.
func unpackSymmetric(packed []float64, d int) []float64 {
	full := make([]float64, d*d)
	for i := range d {
		for j := i; j < d; j++ {
			v := packed[packedAt(d, i, j)]
			full[i*d+j], full[j*d+i] = v, v
		}
	}
	return full
}
