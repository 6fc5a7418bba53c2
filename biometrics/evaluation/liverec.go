package evaluation

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// RecordingLiveness is what the liveness checks made of real recordings.
type RecordingLiveness struct {
	Sessions      int
	FalseLiveness map[string]int // liveness failures on genuine sessions, by reason
	Replay        map[string]ReplayOutcome
	Missed        []string // replays not caught: kind and recording
}

// RunRecordingLiveness streams every real session through one engine, as
// genuine motion (any liveness failure is a false alarm), then replays each
// probe session into another avatar's stream, verbatim, with millimetre
// noise and time-warped, and counts how many replays are caught.
func RunRecordingLiveness(recs []Recording, seed int64) (*RecordingLiveness, error) {
	e, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		return nil, err
	}
	res := &RecordingLiveness{FalseLiveness: map[string]int{}, Replay: map[string]ReplayOutcome{}}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range recs {
		for k, frames := range [][]biometrics.Frame{r.Enroll, r.Probe} {
			s := e.NewStream(fmt.Sprintf("%s-%d", r.ID, k), nil)
			feedGaps(s, frames, &clock, func(ev biometrics.Event) {
				if ev.Kind == biometrics.EventLiveness {
					res.FalseLiveness[ev.Reason]++
				}
			})
			s.Close()
			res.Sessions++
		}
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 99))
	for i, r := range recs {
		// The victim streams; another person streams; then the attacker
		// replays the victim's capture three ways, each into a fresh stream
		// of another avatar.
		for _, frames := range [][]biometrics.Frame{r.Probe, recs[(i+1)%len(recs)].Enroll} {
			s := e.NewStream("victim-or-bystander", nil)
			feedGaps(s, frames, &clock, nil)
			s.Close()
		}
		for _, kind := range []string{"verbatim", "noisy", "time-warped"} {
			s := e.NewStream("attacker", nil)
			rejected := false
			feedGaps(s, transform(r.Probe, kind, rng), &clock, func(ev biometrics.Event) {
				if ev.Kind == biometrics.EventLiveness {
					rejected = true
				}
			})
			s.Close()
			out := res.Replay[kind]
			out.Trials++
			if rejected {
				out.Rejected++
			} else {
				res.Missed = append(res.Missed, kind+" "+r.ID)
			}
			res.Replay[kind] = out
		}
	}
	return res, nil
}

// feedGaps is feed for recordings with gaps: the arrival clock follows the
// device clock, gaps included.
func feedGaps(s *biometrics.Stream, frames []biometrics.Frame, clock *time.Time, each func(biometrics.Event)) {
	feed(s, frames, clock, each)
	*clock = clock.Add(5 * time.Second)
}
