package evaluation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// RecordingLiveness is what the liveness checks made of real recordings.
type RecordingLiveness struct {
	Sessions      int
	FalseLiveness map[string]int // liveness failures on genuine sessions, by reason
	Replay        map[string]ReplayOutcome
	Missed        []string // replays of ReplayKinds not caught: kind and recording
}

// RunRecordingLiveness streams every real session through one engine, as
// genuine motion (any liveness failure is a false alarm), then replays each
// probe session into another avatar's stream, verbatim, with millimetre
// noise and time-warped, and changed on purpose (PerturbedReplayKinds),
// and counts how many replays of each kind are caught.
func RunRecordingLiveness(recs []Recording, seed int64) (*RecordingLiveness, error) {
	e, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		return nil, err
	}
	return runRecordingLiveness(recs, seed, nodes{e, e, e, e, e})
}

// RunRecordingLivenessAcross is RunRecordingLiveness on the nodes of a
// cluster that share their hashed path cells (Engine.SharePaths) and
// nothing else: every first session and every victim streams through one
// node, every second session through another, so that each person's other
// day is judged against what the first saw, and each kind of replay
// through a node of its own, where only the shared cells can catch it.
func RunRecordingLivenessAcross(recs []Recording, seed int64) (*RecordingLiveness, error) {
	es, err := LinkedEngines(biometrics.Config{}, 5)
	if err != nil {
		return nil, err
	}
	return runRecordingLiveness(recs, seed, nodes{es[0], es[1], es[2], es[3], es[4]})
}

// nodes says which engine each part of RunRecordingLiveness streams
// through: first sessions and victims, second sessions, then the verbatim,
// noisy and time-warped replays (the drifted ones through the verbatim
// replays' engine, the head-turned ones through the noisy replays').
type nodes struct {
	first, second           *biometrics.Engine
	verbatim, noisy, warped *biometrics.Engine
}

func (n nodes) replay(kind string) *biometrics.Engine {
	switch kind {
	case "verbatim", "drifted":
		return n.verbatim
	case "noisy", "head-turned":
		return n.noisy
	}
	return n.warped
}

// LinkedEngines returns n engines that share their path cells with one
// another in memory, as the nodes of a cluster do through a PathFeed.
func LinkedEngines(cfg biometrics.Config, n int) ([]*biometrics.Engine, error) {
	es := make([]*biometrics.Engine, n)
	for i := range es {
		var err error
		if es[i], err = biometrics.NewEngine(cfg); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	for i, e := range es {
		name := fmt.Sprintf("node%d", i)
		// Peers take the cells in at once, by the streams' clock: a
		// simulated stream runs faster than real time.
		err := e.SharePaths(key, func(p biometrics.PathBatch) {
			for j, peer := range es {
				if j != i {
					peer.AddPeerPaths(name, p, p.At())
				}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return es, nil
}

// runRecordingLiveness streams every session as genuine motion, then
// replays each probe session every way, through the engines n names.
func runRecordingLiveness(recs []Recording, seed int64, n nodes) (*RecordingLiveness, error) {
	res := &RecordingLiveness{FalseLiveness: map[string]int{}, Replay: map[string]ReplayOutcome{}}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range recs {
		for k, frames := range [][]biometrics.Frame{r.Enroll, r.Probe} {
			e := n.first
			if k == 1 {
				e = n.second
			}
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
	// The perturbed replays draw from their own source, so that the
	// others' noise and speeds are what they were before them.
	perturbRNG := rand.New(rand.NewPCG(uint64(seed), 98))
	for i, r := range recs {
		// The victim streams; another person streams; then the attacker
		// replays the victim's capture each way, each into a fresh stream
		// of another avatar.
		for _, frames := range [][]biometrics.Frame{r.Probe, recs[(i+1)%len(recs)].Enroll} {
			s := n.first.NewStream("victim-or-bystander", nil)
			feedGaps(s, frames, &clock, nil)
			s.Close()
		}
		for _, kind := range slices.Concat(ReplayKinds, PerturbedReplayKinds) {
			from := rng
			if slices.Contains(PerturbedReplayKinds, kind) {
				from = perturbRNG
			}
			s := n.replay(kind).NewStream("attacker", nil)
			rejected := false
			feedGaps(s, transform(r.Probe, kind, from), &clock, func(ev biometrics.Event) {
				if ev.Kind == biometrics.EventLiveness {
					rejected = true
				}
			})
			s.Close()
			out := res.Replay[kind]
			out.Trials++
			if rejected {
				out.Rejected++
			} else if !slices.Contains(PerturbedReplayKinds, kind) {
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
