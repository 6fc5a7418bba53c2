package evaluation

import (
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// The realm's trust lines on the match probability (docs/trust.md): a
// trusted session falls to step-up under stepUpBelow, and is trusted
// again from trustedAbove (the band between is hysteresis).
const (
	stepUpBelow  = 0.5
	trustedAbove = 0.6
)

// StepUps is how often people streaming on another day than their
// enrollment fell under the step-up line.
type StepUps struct {
	People    int
	Windows   int   // windows scored, one a hop
	StepUps   int   // falls under the step-up line from trusted
	PerPerson []int // StepUps by person, in the recordings' order
}

// PerHour is the step-ups in an hour of scored motion.
func (s *StepUps) PerHour(hop time.Duration) float64 {
	if s.Windows == 0 {
		return 0
	}
	return float64(s.StepUps) / (float64(s.Windows) * hop.Hours())
}

// RunRecordingStepUps streams probes[i]'s second session under the
// template of recs[i]'s first, as a realm of these people runs it: one
// engine (cfg; the prior given, while the people are fewer than
// cfg.PriorAsideFrom) whose population is everyone's first-session
// template, each stream trusted and holding its template. A step-up is
// counted each time a stream's match probability falls under the
// realm's step-up line after being at or above its trusted line.
//
// With probes the recordings themselves, every step-up is one a real
// person would be asked for on their second day: the rate the synthetic
// false step-ups stand in for. The eval prints it beside them.
func RunRecordingStepUps(recs, probes []Recording, cfg biometrics.Config, prior []biometrics.NamedTemplate) (*StepUps, error) {
	if len(probes) != len(recs) {
		return nil, fmt.Errorf("evaluation: %d probes for %d people", len(probes), len(recs))
	}
	e, err := biometrics.NewEngine(cfg, prior...)
	if err != nil {
		return nil, err
	}
	enrolled := make([][]biometrics.Features, len(recs))
	for i, r := range recs {
		if enrolled[i], err = biometrics.Windows(r.Enroll, biometrics.Config{}); err != nil {
			return nil, err
		}
		t, err := biometrics.NewTemplate(enrolled[i], time.Time{})
		if err != nil {
			return nil, fmt.Errorf("enrol %s: %w", r.ID, err)
		}
		e.SetTemplate(r.ID, t)
	}
	if err := e.Refit(); err != nil {
		return nil, err
	}
	if e.Model() == nil {
		return nil, fmt.Errorf("evaluation: %d people and %d of the prior fit no background model", len(recs), len(prior))
	}
	res := &StepUps{People: len(recs), PerPerson: make([]int, len(recs))}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, r := range recs {
		// Each stream its own copy, as the realm reads one from the store.
		own, _ := biometrics.NewTemplate(enrolled[i], time.Time{})
		s := e.NewStream(r.ID, own)
		s.SetTrusted(true)
		armed := false
		feedGaps(s, probes[i].Probe, &clock, func(ev biometrics.Event) {
			if ev.Kind != biometrics.EventScore {
				return
			}
			res.Windows++
			switch {
			case ev.Probability >= trustedAbove:
				armed = true
			case armed && ev.Probability < stepUpBelow:
				res.StepUps++
				res.PerPerson[i]++
				armed = false
			}
		})
		s.Close()
	}
	return res, nil
}
