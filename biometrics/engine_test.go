package biometrics

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestPriorStepsAside: the synthetic prior fills a young node's background
// and leaves it once PriorAsideFrom real people are enrolled, and comes
// back if they leave.
func TestPriorStepsAside(t *testing.T) {
	var prior []NamedTemplate
	for i := range 4 {
		tm, err := NewTemplate(randomWindows(uint64(50+i), 10), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		prior = append(prior, NamedTemplate{ID: fmt.Sprintf("prior-%d", i), Template: tm})
	}
	e, err := NewEngine(Config{PriorAsideFrom: 3}, prior...)
	if err != nil {
		t.Fatal(err)
	}
	waitCohort := func(want int) {
		t.Helper()
		// Refits are coalesced to one a second: wait for the condition.
		deadline := time.Now().Add(30 * time.Second)
		for e.Model().CohortSize() != want {
			if time.Now().After(deadline) {
				t.Fatalf("cohort of %d, want %d", e.Model().CohortSize(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitCohort(4)
	for i := range 3 {
		tm, err := NewTemplate(randomWindows(uint64(i+1), 10), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		e.SetTemplate(fmt.Sprintf("real-%d", i), tm)
		if i < 2 {
			waitCohort(4 + i + 1)
		}
	}
	waitCohort(3)
	e.RemoveTemplate("real-0")
	waitCohort(2 + 4)

	never, err := NewEngine(Config{PriorAsideFrom: -1}, prior...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tm, _ := NewTemplate(randomWindows(uint64(i+1), 10), time.Time{})
		never.SetTemplate(fmt.Sprintf("real-%d", i), tm)
	}
	deadline := time.Now().Add(30 * time.Second)
	for never.Model().CohortSize() != 9 {
		if time.Now().After(deadline) {
			t.Fatalf("PriorAsideFrom -1: cohort of %d, want 9 (the prior stays)", never.Model().CohortSize())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOneCovariancePerPerson: the template a stream is opened with and the
// one the background's population holds arrive as separate copies read
// from the store, yet the node keeps one covariance of the person; a
// re-enrolled person's different covariance is not taken for the old one,
// and adaptation hands back the covariance it was enrolled with.
func TestOneCovariancePerPerson(t *testing.T) {
	tm, err := NewTemplate(randomWindows(7, 12), time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := tm.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	read := func() *Template {
		var c Template
		if err := c.UnmarshalBinary(stored); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	e, err := NewEngine(Config{})
	if err != nil {
		t.Fatal(err)
	}
	e.SetTemplate("ada", read())
	held := e.population["ada"].Cov
	s := e.NewStream("ada", read())
	if &s.tmpl.Cov[0] != &held[0] {
		t.Error("the stream keeps a covariance of its own beside the population's")
	}
	e.SetTemplate("ada", read())
	if &e.population["ada"].Cov[0] != &held[0] {
		t.Error("reading the same template again replaced the population's covariance")
	}

	other, err := NewTemplate(randomWindows(8, 12), time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	e.SetTemplate("ada", other)
	if got := e.population["ada"].Cov; &got[0] == &held[0] || !slices.Equal(got, other.Cov) {
		t.Error("a new enrollment's covariance was not kept")
	}
	if !slices.Equal(s.tmpl.Cov, tm.Cov) {
		t.Error("the stream's covariance changed with another template of its avatar")
	}
	s.tmpl.adapt(&Features{Core: randomWindows(9, 1)[0].Core}, 0.5, time.Unix(3, 0))
	if !slices.Equal(s.tmpl.Cov, tm.Cov) || slices.Equal(s.tmpl.Mean, tm.Mean) {
		t.Error("adaptation must move the mean and leave the covariance")
	}
}

// TestPopulationHoldsDriftOnlyForTheBackground: the drift statistics a
// stream adapts are its own; the background's population keeps a copy of
// them only when it learns from them (Config.DriftBackground), and the
// prior never, so a node does not hold them twice per person. The model
// is the same either way when the background does not read them.
func TestPopulationHoldsDriftOnlyForTheBackground(t *testing.T) {
	var templates []*Template
	for p := range 3 {
		tm, err := NewTemplate(randomWindows(uint64(20+p), 12), time.Unix(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		templates = append(templates, tm)
	}
	prior := []NamedTemplate{{ID: "prior", Template: templates[2]}}
	plain, err := NewEngine(Config{}, prior...)
	if err != nil {
		t.Fatal(err)
	}
	learning, err := NewEngine(Config{DriftBackground: true}, prior...)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Engine{plain, learning} {
		e.SetTemplate("ada", templates[0])
		e.SetTemplate("bob", templates[1])
		if e.prior[0].Template.Drift != nil {
			t.Error("the prior's copy keeps drift statistics")
		}
		s := e.NewStream("ada", templates[0])
		if s.tmpl.Drift == nil || s.tmpl.Drift == templates[0].Drift {
			t.Error("the stream does not keep drift statistics of its own to adapt")
		}
	}
	if plain.population["ada"].Drift != nil {
		t.Error("without DriftBackground the population keeps a copy of the drift statistics")
	}
	if d := learning.population["ada"].Drift; d == nil || d.N != templates[0].Drift.N {
		t.Error("with DriftBackground the population lost the drift statistics it learns from")
	}

	full, err := FitModel([]NamedTemplate{{ID: "ada", Template: templates[0]}, {ID: "bob", Template: templates[1]}, prior[0]}, DefaultMaxCohort)
	if err != nil {
		t.Fatal(err)
	}
	plain.refit()
	if got := plain.Model(); !reflect.DeepEqual(got, full) {
		t.Error("the model fitted from the population without drift statistics differs from the one fitted from whole templates")
	}
}
