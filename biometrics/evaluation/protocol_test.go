package evaluation

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

func TestEERIntervalSeparated(t *testing.T) {
	people := make([]ProbeTrials, 6)
	for i := range people {
		people[i] = ProbeTrials{Genuine: []float64{3, 4}, Impostor: []float64{-1, 0, 1}}
	}
	lo, hi := EERInterval(people, 200, 1)
	if lo != 0 || hi != 0 {
		t.Errorf("separated trials: interval [%v, %v], want [0, 0]", lo, hi)
	}
}

// People whose genuine scores differ (some drift more between days than
// others) make the EER depend on who was sampled: the interval must hold
// the point figure, have some width, and be the same for the same seed.
func TestEERIntervalBracketsEER(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	people := make([]ProbeTrials, 10)
	var gen, imp []float64
	for i := range people {
		shift := 2 - 0.4*float64(i) // person 0 far above impostors, person 9 below them
		for range 5 {
			g := shift + rng.NormFloat64()*0.5
			people[i].Genuine = append(people[i].Genuine, g)
			gen = append(gen, g)
		}
		for range 45 {
			s := rng.NormFloat64()
			people[i].Impostor = append(people[i].Impostor, s)
			imp = append(imp, s)
		}
	}
	eer := EER(gen, imp)
	lo, hi := EERInterval(people, 1000, 3)
	if !(lo <= eer && eer <= hi) || hi-lo < 0.02 {
		t.Errorf("EER %.3f, interval [%.3f, %.3f]: want it inside an interval of some width", eer, lo, hi)
	}
	if lo2, hi2 := EERInterval(people, 1000, 3); lo2 != lo || hi2 != hi {
		t.Errorf("same seed gave [%v, %v] then [%v, %v]", lo, hi, lo2, hi2)
	}
}

func TestEERIntervalEmpty(t *testing.T) {
	if lo, hi := EERInterval(nil, 100, 1); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("no people: [%v, %v], want NaN", lo, hi)
	}
	onlyGenuine := []ProbeTrials{{Genuine: []float64{1}}, {Genuine: []float64{2}}}
	if lo, hi := EERInterval(onlyGenuine, 100, 1); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("no impostor trials: [%v, %v], want NaN", lo, hi)
	}
}

// Among over everyone reproduces Run's figures; over a group it keeps only
// the group's trials (each probe against the group's templates), and it
// refuses people the result does not hold.
func TestResultAmong(t *testing.T) {
	recs := SyntheticRecordings(6, 200, 30)
	res := runDefaults(t, recs)
	ids := res.IDs()
	whole, err := res.Among(ids)
	if err != nil {
		t.Fatal(err)
	}
	for i := range whole {
		w, r := whole[i], res.Spans[i]
		if w.EER != r.EER || w.Rank1 != r.Rank1 || len(w.Genuine) != len(r.Genuine) || len(w.Impostor) != len(r.Impostor) {
			t.Errorf("span %s: Among(all) = EER %v rank-1 %v %d/%d trials, Run gave %v %v %d/%d",
				w.Name, w.EER, w.Rank1, len(w.Genuine), len(w.Impostor), r.EER, r.Rank1, len(r.Genuine), len(r.Impostor))
		}
	}
	group := ids[:3]
	part, err := res.Among(group)
	if err != nil {
		t.Fatal(err)
	}
	session := part[len(part)-1]
	if len(session.Genuine) != 3 || len(session.Impostor) != 6 || session.RankTrials != 3 {
		t.Errorf("session span among 3 people: %d genuine, %d impostor, %d rank trials; want 3, 6, 3",
			len(session.Genuine), len(session.Impostor), session.RankTrials)
	}
	for _, bad := range [][]string{{ids[0]}, {ids[0], "nobody"}, {ids[0], ids[0]}} {
		if _, err := res.Among(bad); err == nil {
			t.Errorf("Among(%q) = nil error, want one", bad)
		}
	}
}

// TestProtocolLeavesThePairOut: in every protocol, nothing of the claimed
// or the probing person shapes the background of their comparison.
// Changing the claimed person's second day and the probing person's first
// day must leave that pair's scores exactly as they were, and (the test
// could not fail otherwise) must move the scores of a pair whose
// background holds them.
func TestProtocolLeavesThePairOut(t *testing.T) {
	people, err := Featurize(SyntheticRecordings(6, 11, 20), biometrics.Config{}, biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	prior, err := synth.Prior(3, 500, 10*time.Second, biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	spans := SpansFor(biometrics.DefaultWindow, biometrics.DefaultHop)
	for name, proto := range map[string]Protocol{
		"first sessions":      {MaxCohort: 64},
		"both days":           {MaxCohort: 64, AllSessions: true},
		"both days and prior": {MaxCohort: 64, AllSessions: true, Prior: prior, PriorAsideFrom: -1},
	} {
		t.Run(name, func(t *testing.T) {
			before, err := Run(people, spans, proto, nil)
			if err != nil {
				t.Fatal(err)
			}
			changed := slices.Clone(people)
			changed[0].Probe = shifted(people[0].Probe, 0.5)
			changed[1].Enroll = shifted(people[1].Enroll, 0.5)
			after, err := Run(changed, spans, proto, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Claimed 0, probing 1: neither the claim (0's first day) nor
			// the probe (1's second day) changed, and nothing else of them
			// may count.
			if !slices.Equal(before.scores[0][1], after.scores[0][1]) {
				t.Errorf("scores of claim 0 against probe 1 moved with 0's second day or 1's first day")
			}
			// Claimed 2, probing 3: person 1's first day is in their
			// background (and cohort), so their scores move.
			if slices.Equal(before.scores[2][3], after.scores[2][3]) {
				t.Errorf("scores of claim 2 against probe 3 did not move when a background person changed")
			}
		})
	}
}

// shifted returns copies of windows with every feature moved by d.
func shifted(ws []biometrics.Features, d float64) []biometrics.Features {
	out := make([]biometrics.Features, len(ws))
	for i, w := range ws {
		w.Core = slices.Clone(w.Core)
		for k := range w.Core {
			w.Core[k] += d * float64(k%3)
		}
		out[i] = w
	}
	return out
}

// TestBackgroundDrawsLeaveThePairOut: a drawn background holds exactly
// BackgroundPeople of the other people, never the claimed or the probing
// one, the same for the pair either way round and for the same draw, and
// other people in other draws; without a size it is everyone else.
func TestBackgroundDrawsLeaveThePairOut(t *testing.T) {
	const n = 10
	differs := false
	for a := range n {
		for b := range n {
			if all := backgroundOf(n, a, b, Protocol{}); len(all) != n-1-boolInt(a != b) {
				t.Fatalf("(%d, %d) without a size: %v, want everyone else", a, b, all)
			}
			for draw := range uint64(4) {
				p := Protocol{BackgroundPeople: 4, BackgroundDraw: draw}
				got := backgroundOf(n, a, b, p)
				if len(got) != 4 || slices.Contains(got, a) || slices.Contains(got, b) || !slices.IsSorted(got) {
					t.Fatalf("(%d, %d) draw %d: %v, want 4 others, sorted", a, b, draw, got)
				}
				if again, swapped := backgroundOf(n, a, b, p), backgroundOf(n, b, a, p); !slices.Equal(got, again) || !slices.Equal(got, swapped) {
					t.Fatalf("(%d, %d) draw %d: %v, then %v, and %v the other way round", a, b, draw, got, again, swapped)
				}
				differs = differs || !slices.Equal(got, backgroundOf(n, a, b, Protocol{BackgroundPeople: 4, BackgroundDraw: draw + 1}))
			}
		}
	}
	if !differs {
		t.Error("every draw gave every pair the same people")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
