package biometrics

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randomWindows makes n windows of features scattered around a centre.
func randomWindows(seed uint64, n int) []Features {
	r := rand.New(rand.NewPCG(seed, 1))
	centre := make([]float64, NumCoreFeatures)
	for i := range centre {
		centre[i] = r.NormFloat64()
	}
	out := make([]Features, n)
	for k := range out {
		c := make([]float64, NumCoreFeatures)
		for i := range c {
			c[i] = centre[i] + 0.3*r.NormFloat64()
		}
		out[k] = Features{Core: c}
	}
	return out
}

// roundTrip encodes and decodes a template.
func roundTrip(t *testing.T, tm *Template) (Template, []byte) {
	t.Helper()
	b, err := tm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Template
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return got, b
}

func TestTemplateRoundTrip(t *testing.T) {
	tm, err := NewTemplate(randomWindows(1, 30), time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	tm.HeartMean = []float64{71, 3}
	got, _ := roundTrip(t, tm)
	if !reflect.DeepEqual(&got, tm) {
		t.Errorf("UnmarshalBinary(MarshalBinary(t)) = %+v, want %+v", got, tm)
	}
}

func TestTemplateRejects(t *testing.T) {
	tm, _ := NewTemplate(randomWindows(2, 10), time.Unix(0, 0))
	good, _ := tm.MarshalBinary()
	mut := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version", mut(func(b []byte) []byte { b[0] = 9; return b })},
		{"feature count", mut(func(b []byte) []byte { b[1]++; return b })},
		{"truncated", good[:len(good)-3]},
		{"trailing", append(append([]byte(nil), good...), 0)},
		{"NaN mean", mut(func(b []byte) []byte {
			copy(b[27:], []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f})
			return b
		})},
		// The covariance is held as its upper triangle: one whose halves
		// differ was not written by NewTemplate.
		{"asymmetric covariance", mut(func(b []byte) []byte {
			covAt := 23 + 4 + 8*NumCoreFeatures + 4
			b[covAt+8*1] ^= 1 // (0, 1), not (1, 0)
			return b
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Template
			if err := got.UnmarshalBinary(tc.b); !errors.Is(err, ErrTemplate) {
				t.Errorf("UnmarshalBinary error = %v, want %v", err, ErrTemplate)
			}
		})
	}
	if _, err := NewTemplate(randomWindows(3, 1), time.Unix(0, 0)); !errors.Is(err, ErrTemplate) {
		t.Errorf("NewTemplate(1 window) error = %v, want %v", err, ErrTemplate)
	}
}

func FuzzTemplateUnmarshal(f *testing.F) {
	tm, _ := NewTemplate(randomWindows(4, 12), time.Unix(1, 0))
	good, _ := tm.MarshalBinary()
	f.Add(good)
	f.Add(good[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Template
		if err := got.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("error %v does not wrap ErrTemplate", err)
			}
			return
		}
		again, err := got.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded template does not marshal: %v", err)
		}
		var back Template
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatal(err)
		}
	})
}

func TestInverseSqrt(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{1, 3, 12, 40} {
		t.Run("", func(t *testing.T) {
			// A random symmetric positive definite matrix: A·Aᵀ + I.
			a := make([]float64, n*n)
			for i := range a {
				a[i] = r.NormFloat64()
			}
			s := make([]float64, n*n)
			for i := range n {
				for j := range n {
					for k := range n {
						s[i*n+j] += a[i*n+k] * a[j*n+k]
					}
				}
				s[i*n+i]++
			}
			w := inverseSqrt(s, n)
			// w·s·w must be the identity.
			var worst float64
			for i := range n {
				for j := range n {
					var v float64
					for k := range n {
						for l := range n {
							v += w[i*n+k] * s[k*n+l] * w[l*n+j]
						}
					}
					if i == j {
						v--
					}
					worst = math.Max(worst, math.Abs(v))
				}
			}
			if worst > 1e-8 {
				t.Errorf("n=%d: W·S·W differs from I by %g", n, worst)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"rate", Config{SampleRate: 5}},
		{"window", Config{Window: time.Millisecond}},
		{"hop over window", Config{Window: time.Second, Hop: 2 * time.Second}},
		{"adapt", Config{AdaptRate: 0.5}},
		{"cohort", Config{MaxCohort: 1}},
		{"tolerance", Config{ReplayTolerance: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewEngine(tc.cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("NewEngine(%+v) error = %v, want %v", tc.cfg, err, ErrInvalidConfig)
			}
		})
	}
	if _, err := NewEngine(Config{}); err != nil {
		t.Errorf("NewEngine(zero Config) = %v, want nil", err)
	}
}

func TestResamplerGrid(t *testing.T) {
	rs := resampler{step: 20_000, maxGap: 250_000}
	var got []uint64
	var starts int
	for _, tu := range []uint64{1_000_000, 1_013_000, 1_047_000, 1_050_000, 1_400_000, 1_420_000} {
		f := Frame{TimeUS: tu, Head: Pose{Pos: [3]float32{float32(tu) / 1e6}, Rot: [4]float32{0, 0, 0, 1}, Tracked: true}}
		for _, s := range rs.push(&f) {
			got = append(got, s.timeUS)
			if s.segStart {
				starts++
			}
		}
	}
	// The first frame starts a segment, and the 350 ms gap starts another.
	want := []uint64{1_000_000, 1_020_000, 1_040_000, 1_400_000, 1_420_000}
	if !reflect.DeepEqual(got, want) || starts != 2 {
		t.Errorf("resampled at %v with %d segment starts, want %v with 2", got, starts, want)
	}
}

func TestModelSeparatesPeople(t *testing.T) {
	var bg []NamedTemplate
	for i := range 6 {
		tm, _ := NewTemplate(randomWindows(uint64(10+i), 20), time.Unix(0, 0))
		bg = append(bg, NamedTemplate{ID: string(rune('a' + i)), Template: tm})
	}
	m, err := FitModel(bg, 64)
	if err != nil {
		t.Fatal(err)
	}
	claim := m.Claim("a", bg[0].Template)
	own := randomWindows(10, 3)[2]
	other := randomWindows(11, 3)[2]
	if so, si := m.Score(claim, m.Embed(&own)), m.Score(claim, m.Embed(&other)); so <= si+1 {
		t.Errorf("Score(own window) = %.2f, Score(other's window) = %.2f; want own clearly higher", so, si)
	}
	if _, err := FitModel(bg[:1], 64); !errors.Is(err, ErrNoBackground) {
		t.Errorf("FitModel(1 template) error = %v, want %v", err, ErrNoBackground)
	}
}
