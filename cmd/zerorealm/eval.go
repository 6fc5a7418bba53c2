package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/evaluation"
	"github.com/zerorealm/zerorealm/biometrics/synth"
)

func newEvalCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure the realm's verifiers on recorded or synthetic data",
		Args:  noArgs,
	}
	cmd.AddCommand(newEvalBiometricsCommand())
	return cmd
}

type evalBiometricsFlags struct {
	data, jsonPath, plotDir string
	people                  int
	seed                    int64
	swaps, replays          int
	hours                   float64
	crowd, crowdNodes       int
	crowdMinutes            float64
	priorAside              int
	// backgroundPeople, when above 0, also measures backgrounds of that
	// many people, drawn backgroundDraws times (evaluation.Protocol's
	// BackgroundPeople).
	backgroundPeople, backgroundDraws int
}

func newEvalBiometricsCommand() *cobra.Command {
	var f evalBiometricsFlags
	cmd := &cobra.Command{
		Use:   "biometrics",
		Short: "Equal error rate, identification, change-of-wearer and replay figures of the motion verifier",
		Long: `Enrols every person on their first session and probes with their second
(another day); impostors are every other person's probes. The background
model and the normalization cohort of each comparison are fitted without the
claimed and the probing person, on first sessions only, from real people
only. Two variants follow: the synthetic prior added to every background
(as a node of fewer than --prior-aside real people fits it), and the
within-person scatter learned from the other people's sessions of both
days (as a realm in service can learn it).

Each EER comes with a 95 % interval from resampling the probing people, and
the figures are repeated within a development split (the first half of the
people by id, then the rest): choose variants on the first group, report
them on the second. With --background-people K, every comparison's
background and cohort are also drawn as K of the other people, in
--background-draws draws, and the mean figures printed for the realm's way
and each variant: how the verifier grows with the people a node has.

With --data, reads the xr-archery recordings (gzip CSV; Liebers et al., CHI
2021) from that directory; without it, uses synthetic people. Change of
wearer, false step-ups and replays are always simulated on synthetic streams;
with --data, replays of the real recordings are measured too, and each
person's second day is streamed under their first day's template as a realm
of them would, counting how often each falls under the step-up line.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// No ZR_ environment here: ZR_DATA is the server's data
			// directory, not a dataset.
			return runEvalBiometrics(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "directory of the xr-archery recordings (pUU_sS.csv.gz); empty: synthetic people")
	fl.StringVar(&f.jsonPath, "json", "", "also write the results as JSON to this file ('-' for standard output)")
	fl.StringVar(&f.plotDir, "plot", "", "write det.png and scores.png to this directory")
	fl.IntVar(&f.people, "people", 20, "synthetic people when there is no --data")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the synthetic people and attacks")
	fl.IntVar(&f.swaps, "swaps", 40, "change-of-wearer trials")
	fl.IntVar(&f.replays, "replays", 40, "replay trials per kind")
	fl.Float64Var(&f.hours, "hours", 2, "hours of genuine synthetic motion for the false step-up rate")
	fl.IntVar(&f.priorAside, "prior-aside", biometrics.DefaultPriorAsideFrom, "real people from which the synthetic prior leaves the streams' background (-1: never)")
	fl.IntVar(&f.crowd, "crowd", 1000, "synthetic people streaming together for --crowd-minutes, for false liveness alarms in a crowd (0: skip)")
	fl.Float64Var(&f.crowdMinutes, "crowd-minutes", 1, "minutes the crowd streams: a long crowd also compares each person's motion with their own of minutes before, as a long load run does")
	fl.IntVar(&f.crowdNodes, "crowd-nodes", 1, "nodes the crowd is spread over, sharing their hashed path cells as a cluster's nodes do")
	fl.IntVar(&f.backgroundPeople, "background-people", 0, "also fit every comparison's background and cohort from this many of the other people, drawn --background-draws times, and print the mean figures: how the verifier grows with a node's people (0: off; at most the people less two)")
	fl.IntVar(&f.backgroundDraws, "background-draws", 12, "draws of --background-people")
	return cmd
}

// evalReport is the JSON form of the results.
type evalReport struct {
	Source      string                     `json:"source"`
	Citation    string                     `json:"citation,omitempty"`
	People      int                        `json:"people"`
	Spans       []evalSpan                 `json:"spans"`
	Groups      []evalGroup                `json:"groups"`
	Variants    []evalVariant              `json:"variants"`
	Drawn       []evalDrawn                `json:"background_draws,omitempty"`
	Swap        evalSwap                   `json:"swap"`
	ThinnedSwap evalSwap                   `json:"swap_thinning"` // on a node that thins
	Replay      map[string]evalReplay      `json:"replay"`
	RealReplay  map[string]evalReplay      `json:"real_replay,omitempty"`
	RealFalseLv map[string]int             `json:"real_false_liveness,omitempty"`
	RealStepUps []evalStepUps              `json:"real_step_ups,omitempty"`
	Genuine     evalGenuine                `json:"genuine"`
	Crowd       *evalCrowd                 `json:"crowd,omitempty"`
	Summary     map[string]json.RawMessage `json:"summary"`
}

type evalSpan struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	EER        float64 `json:"eer"`
	EERLow     float64 `json:"eer_low"`  // 95 % interval, resampling probing people
	EERHigh    float64 `json:"eer_high"` // (see evaluation.EERInterval)
	Rank1      float64 `json:"rank1"`
	Genuine    int     `json:"genuine_trials"`
	Impostor   int     `json:"impostor_trials"`
	RankTrials int     `json:"rank_trials"`
}

// evalGroup is the figures among one group of people of the development
// split: variants are chosen on the first group and reported on the second.
type evalGroup struct {
	Name   string     `json:"name"`
	People []string   `json:"people"`
	Spans  []evalSpan `json:"spans"`
}

// evalVariant is the figures of another way of fitting the background,
// shown beside the realm's own.
type evalVariant struct {
	Name   string      `json:"name"`
	Spans  []evalSpan  `json:"spans"`
	Groups []evalGroup `json:"groups"`
}

// namedProtocol is a way of fitting the background, as the eval names it.
type namedProtocol struct {
	name  string
	proto evaluation.Protocol
}

// evalDrawn is the mean figures of one way of fitting the background
// with backgrounds drawn as People of the other people, Draws times
// (--background-people).
type evalDrawn struct {
	Name   string          `json:"name"`
	People int             `json:"people"`
	Draws  int             `json:"draws"`
	Spans  []evalMean      `json:"spans"`
	Groups []evalGroupMean `json:"groups"`
}

type evalMean struct {
	Name  string  `json:"name"`
	EER   float64 `json:"eer"`
	Rank1 float64 `json:"rank1"`
}

type evalGroupMean struct {
	Name  string     `json:"name"`
	Spans []evalMean `json:"spans"`
}

// drawnBackgrounds runs the protocol v draws times with every background
// and cohort drawn as k of the other people, and averages the figures.
func drawnBackgrounds(people []evaluation.Person, spans []evaluation.Span, v namedProtocol, k, draws int, bar *progress) (*evalDrawn, error) {
	out := &evalDrawn{Name: v.name, People: k, Draws: draws}
	name := fmt.Sprintf("backgrounds of %d, %s", k, v.name)
	for d := range draws {
		proto := v.proto
		proto.BackgroundPeople, proto.BackgroundDraw = k, uint64(d+1)
		res, err := evaluation.Run(people, spans, proto, func(done, total int) { bar.update(name, d*total+done, draws*total) })
		if err != nil {
			return nil, err
		}
		groups, err := evalGroups(res)
		if err != nil {
			return nil, err
		}
		if d == 0 {
			for _, g := range groups {
				out.Groups = append(out.Groups, evalGroupMean{Name: g.Name, Spans: make([]evalMean, len(g.Spans))})
			}
			out.Spans = make([]evalMean, len(res.Spans))
		}
		add := func(to []evalMean, from []evalSpan) {
			for i, s := range from {
				to[i].Name = s.Name
				to[i].EER += s.EER / float64(draws)
				to[i].Rank1 += s.Rank1 / float64(draws)
			}
		}
		add(out.Spans, evalSpans(res.Spans))
		for i, g := range groups {
			add(out.Groups[i].Spans, g.Spans)
		}
	}
	return out, nil
}

// The synthetic prior the figures are computed with: the realm's (see
// realm/xr_ingest.go), so that the eval fits backgrounds as a node does.
const (
	evalPriorPeople = 24
	evalPriorSeed   = 1_000_003
	evalPriorMotion = 20 * time.Second
)

// evalGroups splits the people into the development split: the first
// half of the people (by id) to choose variants on, the second to report
// them on.
func evalGroups(res *evaluation.Result) ([]evalGroup, error) {
	ids := res.IDs()
	var out []evalGroup
	for _, g := range []struct {
		name string
		ids  []string
	}{{"development", ids[:(len(ids)+1)/2]}, {"held out", ids[(len(ids)+1)/2:]}} {
		spans, err := res.Among(g.ids)
		if err != nil {
			return nil, err
		}
		out = append(out, evalGroup{Name: g.name, People: g.ids, Spans: evalSpans(spans)})
	}
	return out, nil
}

type evalSwap struct {
	Trials       int     `json:"trials"`
	DetectedIn10 int     `json:"detected_within_10s"`
	P95Seconds   float64 `json:"p95_seconds"`
}

type evalReplay struct {
	Trials   int `json:"trials"`
	Rejected int `json:"rejected"`
	// ScoredAsVictim: of the synthetic replays, those the victim's
	// template took for the victim (evaluation.ReplayOutcome).
	ScoredAsVictim int `json:"scored_as_victim,omitempty"`
}

// evalStepUps is how often the real people fell under the step-up line
// on their second day, streamed as a realm of them runs them
// (evaluation.RunRecordingStepUps): what the synthetic false step-ups
// stand in for.
type evalStepUps struct {
	Name      string  `json:"name"`
	Windows   int     `json:"windows"` // scored, one a second
	StepUps   int     `json:"step_ups"`
	PerHour   float64 `json:"per_hour"`
	PerPerson []int   `json:"per_person"`
}

type evalGenuine struct {
	Hours         float64 `json:"hours"`
	FalseStepUps  int     `json:"false_step_ups"`
	FalseLiveness int     `json:"false_liveness"`
}

type evalCrowd struct {
	People  int            `json:"people"`
	Nodes   int            `json:"nodes"`
	Minutes float64        `json:"minutes"`
	Alarmed int            `json:"alarmed"`
	Reasons map[string]int `json:"reasons,omitempty"`
}

const archeryCitation = "Liebers et al., Understanding User Identification in Virtual Reality Through Behavioral Biometrics and the Effect of Body Normalization, CHI 2021"

func runEvalBiometrics(stdout, stderr io.Writer, f evalBiometricsFlags) error {
	if f.people < 4 || f.swaps < 1 || f.replays < 1 || f.hours <= 0 || f.crowd < 0 || f.crowdNodes < 1 || !(f.crowdMinutes > 0 && f.crowdMinutes <= 24*60) || f.priorAside == 0 || f.priorAside < -1 ||
		f.backgroundPeople != 0 && f.backgroundPeople < 2 || f.backgroundDraws < 1 {
		return usagef("--people must be at least 4, --swaps and --replays at least 1, --hours positive, --crowd at least 0, --crowd-nodes at least 1, --crowd-minutes above 0 and at most a day (1440), --prior-aside at least 1 or -1, --background-people 0 or at least 2, --background-draws at least 1")
	}
	bar := newProgress(stderr)
	var recs []evaluation.Recording
	rep := evalReport{Source: "synthetic"}
	if f.data != "" {
		var err error
		if recs, err = evaluation.ReadRecordings(f.data); err != nil {
			return usagef("--data %s: %v", f.data, err)
		}
		rep.Source, rep.Citation = "xr-archery", archeryCitation
	} else {
		recs = evaluation.SyntheticRecordings(f.people, f.seed, 60)
	}
	// Each recording is one person (Featurize refuses one too short), so a
	// background too large is refused before the recordings are featurized.
	if f.backgroundPeople > len(recs)-2 {
		return usagef("--background-people %d: the %d people leave at most %d others for each comparison", f.backgroundPeople, len(recs), len(recs)-2)
	}
	bar.stage("features")
	people, err := evaluation.Featurize(recs, biometrics.Config{}, biometrics.Config{})
	if err != nil {
		return err
	}
	rep.People = len(people)
	bar.stage("synthetic prior")
	prior, err := synth.Prior(evalPriorPeople, evalPriorSeed, evalPriorMotion, biometrics.Config{})
	if err != nil {
		return err
	}
	spans := evaluation.SpansFor(biometrics.DefaultWindow, biometrics.DefaultHop)
	// The figures of a background of real people only (a node of at
	// least --prior-aside of them fits it so), then two variants: the
	// synthetic prior in every background, as a younger node has it, and
	// the within-person scatter learned from the other people's sessions
	// of both days.
	res, err := evaluation.Run(people, spans, evaluation.Protocol{MaxCohort: biometrics.DefaultMaxCohort},
		func(done, total int) { bar.update("scoring", done, total) })
	if err != nil {
		return err
	}
	variants := []namedProtocol{
		{fmt.Sprintf("synthetic prior (%d people) in every background", evalPriorPeople), evaluation.Protocol{MaxCohort: biometrics.DefaultMaxCohort, Prior: prior, PriorAsideFrom: -1}},
		{"within-person scatter from both days", evaluation.Protocol{MaxCohort: biometrics.DefaultMaxCohort, AllSessions: true}},
	}
	for _, v := range variants {
		vr, err := evaluation.Run(people, spans, v.proto, func(done, total int) { bar.update(v.name, done, total) })
		if err != nil {
			return err
		}
		ev := evalVariant{Name: v.name, Spans: evalSpans(vr.Spans)}
		if ev.Groups, err = evalGroups(vr); err != nil {
			return err
		}
		rep.Variants = append(rep.Variants, ev)
	}
	if f.backgroundPeople > 0 {
		protos := append([]namedProtocol{{"the realm's", evaluation.Protocol{MaxCohort: biometrics.DefaultMaxCohort}}}, variants...)
		for _, v := range protos {
			d, err := drawnBackgrounds(people, spans, v, f.backgroundPeople, f.backgroundDraws, bar)
			if err != nil {
				return err
			}
			rep.Drawn = append(rep.Drawn, *d)
		}
	}
	var realLive *evaluation.RecordingLiveness
	var realStepUps []evalStepUps
	if f.data != "" {
		bar.stage("replays of the recordings")
		if realLive, err = evaluation.RunRecordingLiveness(recs, f.seed); err != nil {
			return err
		}
		// The real people on their second day, as a realm of them streams
		// them: with its synthetic prior (a node of fewer than
		// --prior-aside people has it), and with the prior aside.
		bar.stage("the recordings' second days")
		for _, v := range []struct {
			name  string
			aside int
		}{{"as a realm of them", f.priorAside}, {"with the synthetic prior aside", 1}} {
			su, err := evaluation.RunRecordingStepUps(recs, recs, biometrics.Config{PriorAsideFrom: v.aside}, prior)
			if err != nil {
				return err
			}
			realStepUps = append(realStepUps, evalStepUps{Name: v.name, Windows: su.Windows, StepUps: su.StepUps,
				PerHour: su.PerHour(biometrics.DefaultHop), PerPerson: su.PerPerson})
		}
	}
	live, err := evaluation.RunLive(evaluation.LiveOptions{
		Seed: f.seed, SwapTrials: f.swaps, ReplayTrials: f.replays, GenuineHours: f.hours, CrowdPeople: f.crowd, CrowdFor: time.Duration(f.crowdMinutes * float64(time.Minute)), CrowdNodes: f.crowdNodes, PriorAsideFrom: f.priorAside,
		Progress: func(done, total int) { bar.update("streams", done, total) },
	})
	if err != nil {
		return err
	}
	bar.done()

	rep.Spans = evalSpans(res.Spans)
	if rep.Groups, err = evalGroups(res); err != nil {
		return err
	}
	rep.Swap = evalSwap{Trials: live.SwapTrials, DetectedIn10: live.SwapDetected, P95Seconds: live.SwapP95}
	rep.ThinnedSwap = evalSwap{Trials: live.SwapTrials, DetectedIn10: live.ThinnedSwapDetected, P95Seconds: live.ThinnedSwapP95}
	rep.Replay = map[string]evalReplay{}
	// The summary's rate is of the replays the target names (the
	// registry's kinds); the perturbed ones have lines of their own.
	replayRate := 1.0
	for k, v := range live.Replay {
		rep.Replay[k] = evalReplay(v)
		if slices.Contains(evaluation.ReplayKinds, k) {
			replayRate = math.Min(replayRate, float64(v.Rejected)/float64(v.Trials))
		}
	}
	if realLive != nil {
		rep.RealReplay = map[string]evalReplay{}
		for k, v := range realLive.Replay {
			rep.RealReplay[k] = evalReplay(v)
			if slices.Contains(evaluation.ReplayKinds, k) {
				replayRate = math.Min(replayRate, float64(v.Rejected)/float64(v.Trials))
			}
		}
		rep.RealFalseLv = realLive.FalseLiveness
		rep.RealStepUps = realStepUps
	}
	rep.Genuine = evalGenuine{Hours: live.GenuineHours, FalseStepUps: live.FalseStepUps, FalseLiveness: live.FalseLiveness}
	if live.CrowdPeople > 0 {
		rep.Crowd = &evalCrowd{People: live.CrowdPeople, Nodes: f.crowdNodes, Minutes: live.CrowdMinutes, Alarmed: live.CrowdAlarmed, Reasons: live.CrowdReasons}
	}

	w := stdout
	if rep.Source == "xr-archery" {
		fmt.Fprintf(w, "Real recordings: %d people, xr-archery (%s)\n", rep.People, archeryCitation)
	} else {
		fmt.Fprintf(w, "Synthetic people: %d (seed %d)\n", rep.People, f.seed)
	}
	fmt.Fprintln(w, "Enrol on session 1, probe with session 2; background and cohort fitted leave-people-out on session 1.")
	fmt.Fprintf(w, "Background of real people only; the synthetic prior (%d people) in the variant below.\n", evalPriorPeople)
	fmt.Fprintf(w, "%-10s %8s %15s %8s %10s %10s\n", "evidence", "EER", "EER 95% CI", "rank-1", "genuine", "impostor")
	for _, s := range rep.Spans {
		fmt.Fprintf(w, "%-10s %7.1f%% %6.1f–%5.1f%% %7.1f%% %10d %10d\n", s.Name, 100*s.EER, 100*s.EERLow, 100*s.EERHigh, 100*s.Rank1, s.Genuine, s.Impostor)
	}
	fmt.Fprintln(w, "(EER interval: 95 % bootstrap over the probing people; each person brings all of their trials.)")
	fmt.Fprintln(w, "Development split: choose on the first group, report on the second; rank-1 among the group's templates.")
	for _, g := range rep.Groups {
		line := fmt.Sprintf("%-11s %s–%s:", g.Name, g.People[0], g.People[len(g.People)-1])
		for _, s := range g.Spans {
			line += fmt.Sprintf("  %s EER %.1f%% rank-1 %.1f%% (%d genuine)", s.Name, 100*s.EER, 100*s.Rank1, s.Genuine)
		}
		fmt.Fprintln(w, line)
	}
	for _, v := range rep.Variants {
		line := fmt.Sprintf("variant: %s:", v.Name)
		for _, s := range v.Spans {
			line += fmt.Sprintf("  %s EER %.1f%% (%.1f–%.1f%%) rank-1 %.1f%%", s.Name, 100*s.EER, 100*s.EERLow, 100*s.EERHigh, 100*s.Rank1)
		}
		for _, g := range v.Groups {
			line += fmt.Sprintf("; %s 10s EER %.1f%% session %.1f%%", g.Name, 100*g.Spans[1].EER, 100*g.Spans[2].EER)
		}
		fmt.Fprintln(w, line)
	}
	for _, d := range rep.Drawn {
		line := fmt.Sprintf("backgrounds of %d people (means of %d draws), %s:", d.People, d.Draws, d.Name)
		for _, m := range d.Spans {
			line += fmt.Sprintf("  %s EER %.1f%% rank-1 %.1f%%", m.Name, 100*m.EER, 100*m.Rank1)
		}
		for _, g := range d.Groups {
			line += fmt.Sprintf("; %s 10s EER %.1f%% session %.1f%%", g.Name, 100*g.Spans[1].EER, 100*g.Spans[2].EER)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "change of wearer (synthetic): detected within 10 s in %d/%d, p95 %s\n", live.SwapDetected, live.SwapTrials, secs(live.SwapP95))
	fmt.Fprintf(w, "change of wearer, node thinning (synthetic): detected within 10 s in %d/%d, p95 %s\n", live.ThinnedSwapDetected, live.SwapTrials, secs(live.ThinnedSwapP95))
	fmt.Fprintf(w, "genuine motion (synthetic): %.1f h, %d false step-ups, %d liveness failures\n", live.GenuineHours, live.FalseStepUps, live.FalseLiveness)
	if c := rep.Crowd; c != nil {
		on := ""
		if c.Nodes > 1 {
			on = fmt.Sprintf(" on %d nodes sharing path cells", c.Nodes)
		}
		fmt.Fprintf(w, "crowd (synthetic): %d people streaming together%s for %g min, %d suspended by a liveness check\n", c.People, on, c.Minutes, c.Alarmed)
	}
	for _, k := range slices.Concat(evaluation.ReplayKinds, evaluation.PerturbedReplayKinds) {
		perturbed := slices.Contains(evaluation.PerturbedReplayKinds, k)
		line := fmt.Sprintf("replays %-12s synthetic %d/%d rejected", k, live.Replay[k].Rejected, live.Replay[k].Trials)
		if perturbed {
			line += fmt.Sprintf(" (%d/%d taken for the victim)", live.Replay[k].ScoredAsVictim, live.Replay[k].Trials)
		}
		if realLive != nil {
			line += fmt.Sprintf(", real %d/%d", realLive.Replay[k].Rejected, realLive.Replay[k].Trials)
		}
		if perturbed {
			line += "; changed on purpose, not what the path registry catches (docs/biometrics.md, \"Left open\")"
		}
		fmt.Fprintln(w, line)
	}
	if realLive != nil {
		fmt.Fprintf(w, "liveness failures on the %d real genuine sessions: %d\n", realLive.Sessions, sumCounts(realLive.FalseLiveness))
	}
	for _, su := range rep.RealStepUps {
		fmt.Fprintf(w, "real people on their second day, %s: %d step-ups in %.1f min of scored motion (%.0f an hour), by person %v\n",
			su.Name, su.StepUps, float64(su.Windows)*biometrics.DefaultHop.Minutes(), su.PerHour, su.PerPerson)
	}
	eer := func(i int) string { return fmt.Sprintf("%.3f", rep.Spans[i].EER) }
	summary := fmt.Sprintf("eer_4s=%s eer_10s=%s eer_session=%s rank1_10s=%.3f swap_detect_p95_s=%s replay_reject=%.3f",
		eer(0), eer(1), eer(2), rep.Spans[1].Rank1, secs(live.SwapP95), replayRate)
	rep.Summary = map[string]json.RawMessage{}
	for _, kv := range strings.Fields(summary) {
		k, v, _ := strings.Cut(kv, "=")
		if v == "inf" {
			v = "null"
		}
		rep.Summary[k] = json.RawMessage(v)
	}
	fmt.Fprintln(w, summary)

	if f.jsonPath != "" {
		out, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		out = append(out, '\n')
		if f.jsonPath == "-" {
			if _, err := stdout.Write(out); err != nil {
				return err
			}
		} else if err := os.WriteFile(f.jsonPath, out, 0o644); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
	}
	if f.plotDir != "" {
		if err := os.MkdirAll(f.plotDir, 0o755); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
		if err := writePNG(filepath.Join(f.plotDir, "det.png"), func(w io.Writer) error { return evaluation.WriteDET(w, res.Spans) }); err != nil {
			return err
		}
		if err := writePNG(filepath.Join(f.plotDir, "scores.png"), func(w io.Writer) error { return evaluation.WriteHistogram(w, res.Spans[1]) }); err != nil {
			return err
		}
	}
	return nil
}

func evalSpans(spans []evaluation.SpanResult) []evalSpan {
	var out []evalSpan
	for _, s := range spans {
		out = append(out, evalSpan{Name: s.Name, Seconds: s.Seconds, EER: s.EER,
			EERLow: s.EERLow, EERHigh: s.EERHigh, Rank1: s.Rank1,
			Genuine: len(s.Genuine), Impostor: len(s.Impostor), RankTrials: s.RankTrials})
	}
	return out
}

func secs(v float64) string {
	if v > 1e300 {
		return "inf"
	}
	return fmt.Sprintf("%.1f", v)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func writePNG(path string, draw func(io.Writer) error) error {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := draw(file); err != nil {
		file.Close()
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return file.Close()
}

// progress draws a bar on stderr when it is a terminal, and nothing
// otherwise, so that logs and pipes stay clean.
type progress struct {
	w     io.Writer
	on    bool
	last  time.Time
	label string
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	return p
}

func (p *progress) stage(label string) { p.update(label, 0, 0) }

func (p *progress) update(label string, done, total int) {
	if !p.on {
		return
	}
	now := time.Now()
	if label == p.label && now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.label, p.last = label, now
	const width = 30
	if total <= 0 {
		fmt.Fprintf(p.w, "\r\033[K%s…", label)
		return
	}
	n := done * width / total
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %3d%% %s", strings.Repeat("#", n), strings.Repeat(" ", width-n), done*100/total, label)
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
