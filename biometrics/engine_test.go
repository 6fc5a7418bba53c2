package biometrics

import (
	"fmt"
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
