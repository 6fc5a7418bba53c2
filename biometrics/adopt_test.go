package biometrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

// TestStreamAdoptsATemplateItOpenedWithout: a stream that opened without
// its avatar's template (the store did not answer in time, or the avatar
// enrolled through another node since) scores nothing until it is given
// the template, then judges its wearer from the next window: the person
// the template is of rises to trust, another person falls. A stream that
// has a template, collects one or has closed refuses another.
func TestStreamAdoptsATemplateItOpenedWithout(t *testing.T) {
	e := newEngine(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ada := synth.NewPerson(42)
	enrolling := e.NewStream("ada", nil)
	enrolling.StartEnrollment(20 * time.Second)
	tmpl, _ := pushUntilEnrolled(t, enrolling, ada.Session(1), &clock, 30)
	if tmpl == nil {
		t.Fatal("the enrollment never finished")
	}
	enrolling.Close()

	lastScore := func(s *biometrics.Stream, g *synth.Generator, seconds int) (scores int, last float64) {
		t.Helper()
		for _, ev := range push(s, g.Frames(seconds*72, 72), &clock) {
			switch ev.Kind {
			case biometrics.EventScore:
				scores, last = scores+1, ev.Probability
			case biometrics.EventLiveness:
				t.Fatalf("genuine motion failed liveness: %s", ev.Reason)
			}
		}
		return scores, last
	}
	for _, c := range []struct {
		name   string
		wearer *synth.Person
		want   func(p float64) bool
	}{
		{"the template's person", ada, func(p float64) bool { return p >= 0.9 }},
		{"another person", synth.NewPerson(7), func(p float64) bool { return p <= 0.1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := c.wearer.Session(2)
			s := e.NewStream("ada", nil)
			defer s.Close()
			if n, _ := lastScore(s, g, 5); n != 0 {
				t.Fatalf("a stream without a template scored %d windows", n)
			}
			if err := s.AdoptTemplate(tmpl); err != nil {
				t.Fatal(err)
			}
			n, p := lastScore(s, g, 20)
			if n < 15 || !c.want(p) {
				t.Fatalf("after adopting: %d windows scored, last probability %.2f", n, p)
			}
			if err := s.AdoptTemplate(tmpl); !errors.Is(err, biometrics.ErrAdoptTemplate) {
				t.Fatalf("a second template was adopted: %v", err)
			}
		})
	}

	refused := map[string]*biometrics.Stream{}
	refused["enrolling"] = e.NewStream("ada", nil)
	refused["enrolling"].StartEnrollment(0)
	refused["closed"] = e.NewStream("ada", nil)
	refused["closed"].Close()
	refused["opened with one"] = e.NewStream("ada", tmpl)
	for what, s := range refused {
		if err := s.AdoptTemplate(tmpl); !errors.Is(err, biometrics.ErrAdoptTemplate) {
			t.Errorf("a stream %s adopted a template: %v", what, err)
		}
		s.Close()
	}
	if err := e.NewStream("ada", nil).AdoptTemplate(nil); !errors.Is(err, biometrics.ErrAdoptTemplate) {
		t.Errorf("a nil template was adopted: %v", err)
	}
	if err := e.NewStream("ada", nil).AdoptTemplate(&biometrics.Template{}); !errors.Is(err, biometrics.ErrAdoptTemplate) {
		t.Errorf("an empty template was adopted: %v", err)
	}
}
