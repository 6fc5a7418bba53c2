package biometrics

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// randomPopulation is n people's templates of random windows: what a
// refit walks, whatever the motion behind it.
func randomPopulation(tb testing.TB, n int) map[string]*Template {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	people := make(map[string]*Template, n)
	windows := make([]Features, 4)
	for i := range n {
		for w := range windows {
			core := make([]float64, NumCoreFeatures)
			for k := range core {
				core[k] = rng.NormFloat64() + float64(i%7)
			}
			windows[w] = Features{Core: core}
		}
		t, err := NewTemplate(windows, at)
		if err != nil {
			tb.Fatal(err)
		}
		people[fmt.Sprintf("p%d", i)] = t
	}
	return people
}

// TestRefitIntervalGrowsWithThePopulation: refits are coalesced over a
// second for a small population, and over longer in proportion to a
// large one, whose refit walks more people and is asked for more often.
func TestRefitIntervalGrowsWithThePopulation(t *testing.T) {
	for n, want := range map[int]time.Duration{0: time.Second, 250: time.Second, 500: 2 * time.Second, 2500: 10 * time.Second} {
		if got := refitInterval(n); got != want {
			t.Errorf("refitInterval(%d) = %v, want %v", n, got, want)
		}
	}
	// A population of 500 asks for refits far more often than every
	// 2 s: the first refits at once, the rest join one 2 s later.
	e, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.population = randomPopulation(t, 500)
	tmpl := e.population["p0"]
	start := time.Now()
	e.SetTemplate("p0", tmpl)
	first := e.Model()
	if first == nil {
		t.Fatal("no model after the first refit")
	}
	for range 20 {
		e.SetTemplate("p0", tmpl)
	}
	if e.Model() != first && time.Since(start) < 2*time.Second {
		t.Fatal("refitted again within 2 s at 500 people")
	}
	for deadline := time.Now().Add(5 * time.Second); e.Model() == first; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the coalesced refit never came")
		}
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("the coalesced refit came after %v, want 2 s", took)
	}
}

// BenchmarkRefit is one refit of the background model over a node's
// population: what coalescing (refitInterval) spreads out.
func BenchmarkRefit(b *testing.B) {
	for _, n := range []int{250, 2500} {
		b.Run(fmt.Sprintf("people=%d", n), func(b *testing.B) {
			e, err := NewEngine(Config{})
			if err != nil {
				b.Fatal(err)
			}
			e.population = randomPopulation(b, n)
			for b.Loop() {
				e.refit()
			}
		})
	}
}

// TestRefitTakesThePopulationAtOnce: a population set in one go (a node
// loading its stored templates) is the model's once Refit returns, where
// coalescing alone leaves the model fitted from the first template and
// the prior until refitInterval has passed.
func TestRefitTakesThePopulationAtOnce(t *testing.T) {
	prior := make([]NamedTemplate, 0, 24)
	for id, tmpl := range randomPopulation(t, 24) {
		prior = append(prior, NamedTemplate{ID: "prior-" + id, Template: tmpl})
	}
	e, err := NewEngine(Config{}, prior...)
	if err != nil {
		t.Fatal(err)
	}
	people := randomPopulation(t, 30)
	for id, tmpl := range people {
		e.SetTemplate(id, tmpl)
	}
	// 30 real people still use the prior (it steps aside from 40): 54.
	const want = 30 + 24
	if m := e.Model(); m != nil && m.CohortSize() == want {
		t.Fatal("the coalesced refit came at once: the test shows nothing")
	}
	if err := e.Refit(); err != nil {
		t.Fatal(err)
	}
	if got := e.Model().CohortSize(); got != want {
		t.Fatalf("after Refit the model's cohort is %d people, want %d", got, want)
	}
}

// TestRefitsStoreTheNewestPopulation: a refit held between fitting its
// model and storing it (a large population, a busy node) does not store
// an older population's model over the newer one a Refit asked for
// meanwhile: refits run one at a time, so the later waits and stores last.
func TestRefitsStoreTheNewestPopulation(t *testing.T) {
	e, err := NewEngine(Config{PriorAsideFrom: -1})
	if err != nil {
		t.Fatal(err)
	}
	people := randomPopulation(t, 6)
	for _, id := range []string{"p0", "p1", "p2", "p3", "p4"} {
		e.population[id] = people[id]
	}
	fitted, release := make(chan struct{}), make(chan struct{})
	e.fittedHook = func() {
		e.fittedHook = nil // only the first refit is held
		close(fitted)
		<-release
	}
	var refits sync.WaitGroup
	refit := func() {
		if err := e.Refit(); err != nil {
			t.Error(err)
		}
	}
	refits.Go(refit) // five people, held once fitted
	<-fitted
	e.mu.Lock()
	e.population["p5"] = people["p5"]
	e.mu.Unlock()
	refits.Go(refit) // six people
	// The second refit either waits for the first (as it must) or, were
	// refits to overlap, stores its model now; either way, give it time.
	time.Sleep(200 * time.Millisecond)
	close(release)
	refits.Wait()
	if got := e.Model().CohortSize(); got != 6 {
		t.Fatalf("the model left is fitted from %d people, want the newer population's 6", got)
	}
}
