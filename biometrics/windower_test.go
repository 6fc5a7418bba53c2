package biometrics

import (
	"slices"
	"testing"
	"time"
)

// TestWindowerYieldsNewestSamplesInOrder: the windower keeps one window of
// samples and reorders them in place; every window it returns must be the
// newest size samples, oldest first, exactly as a full history would give.
func TestWindowerYieldsNewestSamplesInOrder(t *testing.T) {
	for _, c := range []struct{ size, hop int }{{100, 50}, {100, 100}, {7, 3}, {8, 1}} {
		w := newWindower(c.size, c.hop)
		var all []uint64
		windows := 0
		for i := range 10 * c.size {
			s := sample{timeUS: uint64(1000 + i)}
			all = append(all, s.timeUS)
			got := w.add(&s)
			due := len(all) >= c.size && (len(all)-c.size)%c.hop == 0
			if (got != nil) != due {
				t.Fatalf("size %d hop %d: after %d samples window returned %v, want %v", c.size, c.hop, len(all), got != nil, due)
			}
			if got == nil {
				continue
			}
			windows++
			times := make([]uint64, len(got))
			for k := range got {
				times[k] = got[k].timeUS
			}
			if want := all[len(all)-c.size:]; !slices.Equal(times, want) {
				t.Fatalf("size %d hop %d: window %d is %v, want %v", c.size, c.hop, windows, times, want)
			}
		}
		if windows == 0 {
			t.Fatalf("size %d hop %d: no window", c.size, c.hop)
		}
	}
}

// TestStreamSharesCovarianceWithPopulation: an avatar's live stream and the
// engine's population hold one copy of the template's covariance, also
// after the stream hands back an adapted template.
func TestStreamSharesCovarianceWithPopulation(t *testing.T) {
	tmpl := &Template{Created: time.Unix(0, 0), Windows: 2, Mean: make([]float64, NumCoreFeatures), Cov: make([]float64, NumCoreFeatures*NumCoreFeatures)}
	for i := range NumCoreFeatures {
		tmpl.Cov[i*NumCoreFeatures+i] = 1 + float64(i)
	}
	e, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.SetTemplate("ada", tmpl)
	s := e.NewStream("ada", tmpl)
	pop := e.populationCov("ada")
	if &s.tmpl.Cov[0] != &pop[0] {
		t.Fatal("the stream keeps its own copy of the covariance")
	}
	if &pop[0] == &tmpl.Cov[0] {
		t.Fatal("the engine shares the caller's covariance, which the caller may change")
	}
	s.tmpl.Mean[0] = 0.5 // as adaptation moves it
	e.setTemplate("ada", s.tmpl, s.tmpl.Cov)
	if got := e.populationCov("ada"); &got[0] != &s.tmpl.Cov[0] {
		t.Fatal("the adapted template stored a second copy of the covariance")
	}
	other := tmpl.clone()
	other.Cov[0] = 9
	e.SetTemplate("ada", other)
	if got := e.populationCov("ada"); got[0] != 9 {
		t.Fatalf("a new covariance was not stored: %v", got[0])
	}
	if s.tmpl.Cov[0] == 9 {
		t.Fatal("replacing the population's template changed the stream's")
	}
}
