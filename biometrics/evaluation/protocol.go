package evaluation

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// ErrTooFewPeople is returned when the leave-people-out protocol cannot
// leave a background of at least two people.
var ErrTooFewPeople = errors.New("evaluation: need at least four people")

// Person is one person's motion: the enrollment session's windows and the
// probe session's windows, in recording order.
type Person struct {
	ID            string
	Enroll, Probe []biometrics.Features
}

// Span is an amount of evidence: Windows consecutive probe windows (0: the
// whole probe session).
type Span struct {
	Name    string
	Seconds float64
	Windows int
}

// SpansFor returns the spans the report uses (about 4 s, 10 s and the whole
// session) for windows of the given length and hop.
func SpansFor(window, hop time.Duration) []Span {
	n := func(sec float64) int {
		return max(1, int(math.Round((sec-window.Seconds())/hop.Seconds()))+1)
	}
	return []Span{{"4s", 4, n(4)}, {"10s", 10, n(10)}, {"session", 0, 0}}
}

// SpanResult holds the trials of one span and their figures.
type SpanResult struct {
	Span
	Genuine, Impostor []float64
	EER               float64
	// EERLow and EERHigh bound the EER's 95 % interval from resampling the
	// probing people (see EERInterval): with ten people, the figure moves
	// by several points depending on who happened to be recorded.
	EERLow, EERHigh float64
	Rank1           float64 // share of probe chunks whose best-scoring template is their own
	RankTrials      int
}

// Result is the outcome of Run.
type Result struct {
	People int
	Spans  []SpanResult

	// What Among needs to recompute figures for a group of people.
	ids       []string
	probeLens []int
	spans     []Span
	scores    [][][]float64 // [claim][probe][window]
}

// Protocol says what the background of each comparison is fitted from.
type Protocol struct {
	// MaxCohort bounds the normalization cohort.
	MaxCohort int
	// AllSessions: the background's within-person scatter comes from the
	// other people's windows of every session (both days), as a realm in
	// service learns it from its people's trusted windows across days;
	// otherwise from their enrollment sessions only, as a newly opened
	// realm has it. Either way neither the claimed nor the probing person
	// contributes, and the cohort is the other people's enrollment
	// templates.
	AllSessions bool
	// Prior is added to every background and cohort after the real
	// people while they are fewer than PriorAsideFrom (negative: always),
	// as a node's synthetic prior is (biometrics.Config.PriorAsideFrom);
	// with PriorAsideFrom 0 the prior is never used.
	Prior          []biometrics.NamedTemplate
	PriorAsideFrom int
	// BackgroundPeople, when above 0, draws the background and cohort of
	// every pair as this many of the other people instead of all of them
	// (a genuine pair as many as an impostor pair), and BackgroundDraw
	// says which draw: a pair and a draw always give the same people.
	// Averaged over draws, the figures say how the verifier grows with
	// the people a node has (docs/biometrics.md, tenth round).
	BackgroundPeople int
	BackgroundDraw   uint64
}

// Run scores every person's probe windows against every person's template.
// The model for the pair (claimed A, probe B) is fitted on everyone
// except A and B, so neither the claim nor the probe ever shaped the
// background it is judged against. progress, if not nil, is called after
// each pair.
func Run(people []Person, spans []Span, proto Protocol, progress func(done, total int)) (*Result, error) {
	if len(people) < 4 {
		return nil, ErrTooFewPeople
	}
	templates := make([]*biometrics.Template, len(people))
	scatters := make([]*biometrics.Scatter, len(people))
	for i, p := range people {
		t, err := biometrics.NewTemplate(p.Enroll, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("enrol %s: %w", p.ID, err)
		}
		templates[i] = t
		s := &biometrics.Scatter{}
		for w := range p.Enroll {
			s.Add(&p.Enroll[w])
		}
		for w := range p.Probe {
			s.Add(&p.Probe[w])
		}
		scatters[i] = s
	}
	n := len(people)
	// window scores[a][b][w]: probe b's window w against a's template.
	scores := make([][][]float64, n)
	models := map[[2]int]*biometrics.Model{}
	done, total := 0, n*n
	for a := range n {
		scores[a] = make([][]float64, n)
		for b := range n {
			key := [2]int{min(a, b), max(a, b)}
			m, ok := models[key]
			if !ok {
				var err error
				if m, err = fitWithout(people, templates, scatters, a, b, proto); err != nil {
					return nil, err
				}
				models[key] = m
			}
			claim := m.Claim(people[a].ID, templates[a])
			ws := make([]float64, len(people[b].Probe))
			for w := range people[b].Probe {
				ws[w] = m.Score(claim, m.Embed(&people[b].Probe[w]))
			}
			scores[a][b] = ws
			done++
			if progress != nil {
				progress(done, total)
			}
		}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	res := &Result{People: n, ids: make([]string, n), probeLens: make([]int, n), spans: spans, scores: scores}
	for i, p := range people {
		res.ids[i], res.probeLens[i] = p.ID, len(p.Probe)
	}
	res.Spans = res.figures(all)
	return res, nil
}

// Among recomputes the figures with only the named people as claims and
// probes, from the scores Run already has: each pair's background was still
// fitted without its two people, from everyone else's first sessions. A
// development split uses it: choose on one group of people, report on the
// other. Rank-1 is then among the group's templates only.
func (r *Result) Among(ids []string) ([]SpanResult, error) {
	idx := make([]int, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		i := slices.Index(r.ids, id)
		if i < 0 || seen[id] {
			return nil, fmt.Errorf("evaluation: %q is not a distinct person of the result", id)
		}
		seen[id] = true
		idx = append(idx, i)
	}
	if len(idx) < 2 {
		return nil, fmt.Errorf("evaluation: %d people: need two to have impostors", len(idx))
	}
	return r.figures(idx), nil
}

// IDs are the people of the result, in Run's order.
func (r *Result) IDs() []string { return slices.Clone(r.ids) }

// figures computes every span's trials and figures with the people at the
// given indices as both claims and probes.
func (r *Result) figures(people []int) []SpanResult {
	var out []SpanResult
	for _, sp := range r.spans {
		sr := SpanResult{Span: sp}
		byProbe := make([]ProbeTrials, len(people))
		correct := 0
		for bi, b := range people {
			for _, c := range chunk(r.probeLens[b], sp.Windows) {
				best, bestA := math.Inf(-1), -1
				for _, a := range people {
					s := mean(r.scores[a][b][c[0]:c[1]])
					if a == b {
						sr.Genuine = append(sr.Genuine, s)
						byProbe[bi].Genuine = append(byProbe[bi].Genuine, s)
					} else {
						sr.Impostor = append(sr.Impostor, s)
						byProbe[bi].Impostor = append(byProbe[bi].Impostor, s)
					}
					if s > best {
						best, bestA = s, a
					}
				}
				sr.RankTrials++
				if bestA == b {
					correct++
				}
			}
		}
		sr.EER = EER(sr.Genuine, sr.Impostor)
		sr.EERLow, sr.EERHigh = EERInterval(byProbe, bootstrapResamples, bootstrapSeed)
		if sr.RankTrials > 0 {
			sr.Rank1 = float64(correct) / float64(sr.RankTrials)
		}
		out = append(out, sr)
	}
	return out
}

// The interval's resampling: enough resamples for a stable 2.5th and 97.5th
// percentile, and a fixed seed so that the same scores always print the
// same interval.
const (
	bootstrapResamples = 2000
	bootstrapSeed      = 1
)

// ProbeTrials are the trials of one probing person: their own probe spans
// against their own template, and against everyone else's.
type ProbeTrials struct {
	Genuine, Impostor []float64
}

// EERInterval is a 95 % percentile bootstrap interval of the EER that
// resamples probing people with replacement, each bringing all of their
// trials. People, not trials, are the unit: one person's probe spans are
// strongly correlated (the same day's drift), so resampling trials would
// pretend to far more certainty than ten people give. It returns NaN, NaN
// when no resample has both genuine and impostor trials.
func EERInterval(byProbe []ProbeTrials, resamples int, seed uint64) (low, high float64) {
	if len(byProbe) == 0 || resamples < 1 {
		return math.NaN(), math.NaN()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	eers := make([]float64, 0, resamples)
	var gen, imp []float64
	for range resamples {
		gen, imp = gen[:0], imp[:0]
		for range byProbe {
			p := &byProbe[rng.IntN(len(byProbe))]
			gen = append(gen, p.Genuine...)
			imp = append(imp, p.Impostor...)
		}
		if len(gen) == 0 || len(imp) == 0 {
			continue
		}
		eers = append(eers, EER(gen, imp))
	}
	if len(eers) == 0 {
		return math.NaN(), math.NaN()
	}
	sort.Float64s(eers)
	at := func(q float64) float64 { return eers[min(len(eers)-1, int(q*float64(len(eers))))] }
	return at(0.025), at(0.975)
}

// chunk splits n windows into consecutive, disjoint runs of size (all of
// them when size is 0); a short tail is dropped so every trial carries the
// same evidence.
func chunk(n, size int) [][2]int {
	if size <= 0 || size >= n {
		if n == 0 {
			return nil
		}
		if size > n {
			return nil
		}
		return [][2]int{{0, n}}
	}
	var out [][2]int
	for s := 0; s+size <= n; s += size {
		out = append(out, [2]int{s, s + size})
	}
	return out
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// EER is the equal error rate: the error where the false-accept and
// false-reject rates meet as the threshold sweeps the scores (higher =
// more alike), interpolated between the two closest thresholds.
func EER(genuine, impostor []float64) float64 {
	if len(genuine) == 0 || len(impostor) == 0 {
		return math.NaN()
	}
	pts := DET(genuine, impostor)
	for i := 1; i < len(pts); i++ {
		p, q := pts[i-1], pts[i]
		if q.FRR >= q.FAR {
			// Crossing between p and q.
			dp, dq := p.FAR-p.FRR, q.FRR-q.FAR
			if dp+dq == 0 {
				return (q.FAR + q.FRR) / 2
			}
			t := dp / (dp + dq)
			return ((p.FAR+p.FRR)/2)*(1-t) + ((q.FAR+q.FRR)/2)*t
		}
	}
	last := pts[len(pts)-1]
	return (last.FAR + last.FRR) / 2
}

// DETPoint is one threshold's false-accept and false-reject rates.
type DETPoint struct {
	Threshold, FAR, FRR float64
}

// DET sweeps the threshold over every score, from accepting everything to
// rejecting everything.
func DET(genuine, impostor []float64) []DETPoint {
	type s struct {
		v   float64
		gen bool
	}
	all := make([]s, 0, len(genuine)+len(impostor))
	for _, v := range genuine {
		all = append(all, s{v, true})
	}
	for _, v := range impostor {
		all = append(all, s{v, false})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	ng, ni := float64(len(genuine)), float64(len(impostor))
	pts := []DETPoint{{Threshold: math.Inf(-1), FAR: 1, FRR: 0}}
	rejG, rejI := 0, 0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			if all[j].gen {
				rejG++
			} else {
				rejI++
			}
			j++
		}
		pts = append(pts, DETPoint{Threshold: all[i].v, FAR: 1 - float64(rejI)/ni, FRR: float64(rejG) / ng})
		i = j
	}
	return pts
}

// fitWithout fits the background of the pair (a, b) from everyone else,
// or from the people Protocol.BackgroundPeople draws of them (backgroundOf).
func fitWithout(people []Person, templates []*biometrics.Template, scatters []*biometrics.Scatter, a, b int, proto Protocol) (*biometrics.Model, error) {
	var bg biometrics.Background
	var cohort []biometrics.NamedTemplate
	for _, k := range backgroundOf(len(people), a, b, proto) {
		var err error
		if proto.AllSessions {
			err = bg.AddScatter(scatters[k])
		} else {
			err = bg.AddTemplate(templates[k])
		}
		if err != nil {
			return nil, fmt.Errorf("background %s: %w", people[k].ID, err)
		}
		cohort = append(cohort, biometrics.NamedTemplate{ID: people[k].ID, Template: templates[k]})
	}
	if proto.PriorAsideFrom >= 0 && bg.People >= proto.PriorAsideFrom {
		return biometrics.FitBackground(&bg, cohort, proto.MaxCohort)
	}
	for _, p := range proto.Prior {
		if err := bg.AddTemplate(p.Template); err != nil {
			return nil, fmt.Errorf("prior %s: %w", p.ID, err)
		}
	}
	cohort = append(cohort, proto.Prior...)
	return biometrics.FitBackground(&bg, cohort, proto.MaxCohort)
}

// backgroundOf is who fits the background of the pair (a, b) among n
// people: everyone else, or Protocol.BackgroundPeople of them drawn by
// the pair (either way round) and Protocol.BackgroundDraw, in order.
func backgroundOf(n, a, b int, proto Protocol) []int {
	others := make([]int, 0, n)
	for k := range n {
		if k != a && k != b {
			others = append(others, k)
		}
	}
	k := proto.BackgroundPeople
	if k <= 0 || k >= len(others) {
		return others
	}
	pair := uint64(min(a, b))<<32 | uint64(max(a, b))
	rng := rand.New(rand.NewPCG(proto.BackgroundDraw, pair))
	rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	others = others[:k]
	slices.Sort(others)
	return others
}
