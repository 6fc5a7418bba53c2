package gctarget

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of a Tuner.
const (
	DefaultFloor   = 20
	DefaultCeiling = 100
	// DefaultBudget is the share of the CPU the program uses that the
	// collector may take before the target is raised.
	DefaultBudget = 0.05
	DefaultEvery  = 5 * time.Second
	// waitAtMost is how long a look waits for two collections: a heap
	// that collects less often than that costs nothing worth keeping
	// memory for. It is short, so that a target raised for a burst (a
	// classroom's enrollments) comes back down soon after it: with a
	// minute, a node raised to 40 while 2,000 avatars enrolled was still
	// there, at 293 KiB an avatar, through the half minute measured after.
	waitAtMost = 15 * time.Second
	// cyclesToJudge is how many collections a look needs: the runtime's
	// CPU estimates move only when one ends, so one alone says little
	// about the time between.
	cyclesToJudge = 2
)

// Config configures a Tuner. Zero values are the defaults.
type Config struct {
	// Floor and Ceiling bound the target (percent, as GOGC).
	Floor, Ceiling int
	// Budget is the most of the program's CPU the collector may take:
	// above it the target rises, and under a third of it the target
	// falls back.
	Budget float64
	// Every is how often the tuner looks (it judges only once two
	// collections have ended since its last judgement).
	Every  time.Duration
	Logger *slog.Logger
}

// Tuner moves the collector's target; Run does it until its context ends.
type Tuner struct {
	cfg Config
	// read and set are the runtime's (tests give their own readings and
	// see the targets set).
	read func() Reading
	set  func(percent int)
	now  func() time.Time
}

// Reading is what the runtime says of the collector's cost so far.
type Reading struct {
	// Taken is the CPU the collector took from the program (assists,
	// dedicated workers, pauses) and Used the CPU the program used, both
	// seconds since the process started, as runtime/metrics estimates
	// them at the last collection's end.
	Taken, Used float64
	// Cycles is how many collections have ended.
	Cycles uint64
}

// New returns a Tuner of the process's collector, or an error for a
// Config that cannot work.
func New(cfg Config) (*Tuner, error) {
	if cfg.Floor == 0 {
		cfg.Floor = DefaultFloor
	}
	if cfg.Ceiling == 0 {
		cfg.Ceiling = DefaultCeiling
	}
	if cfg.Budget == 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Floor < 1 || cfg.Ceiling < cfg.Floor:
		return nil, fmt.Errorf("gctarget: target between %d and %d %%: want a floor of at least 1 and a ceiling not under it", cfg.Floor, cfg.Ceiling)
	case !(cfg.Budget > 0 && cfg.Budget < 1):
		return nil, fmt.Errorf("gctarget: budget %v: want a share of the CPU above 0 and under 1", cfg.Budget)
	}
	return &Tuner{cfg: cfg, read: readRuntime, set: func(p int) { debug.SetGCPercent(p) }, now: time.Now}, nil
}

// Floor is the target the tuner starts from and returns to.
func (t *Tuner) Floor() int { return t.cfg.Floor }

// Run sets the target to the floor and moves it until ctx ends. It leaves
// the last target in place: the caller restores what it had before.
func (t *Tuner) Run(ctx context.Context) {
	st := t.start()
	tick := time.NewTicker(t.cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.look(&st)
		}
	}
}

// judged is what the tuner knows between looks: the target it set, and
// the reading and time of its last judgement.
type judged struct {
	percent int
	base    Reading
	since   time.Time
}

func (t *Tuner) start() judged {
	t.set(t.cfg.Floor)
	return judged{percent: t.cfg.Floor, base: t.read(), since: t.now()}
}

// look judges the collector's share since the last judgement, once two
// collections have ended since (or waitAtMost has passed), and moves the
// target by it.
func (t *Tuner) look(st *judged) {
	r, now := t.read(), t.now()
	if r.Cycles-st.base.Cycles < cyclesToJudge && now.Sub(st.since) < waitAtMost {
		return
	}
	share := Share(st.base, r)
	if next := t.next(st.percent, share); next != st.percent {
		t.cfg.Logger.Info("collector target moved by the collector's share of the CPU the node used",
			"gc_percent", next, "was", st.percent, "share", fmt.Sprintf("%.1f%%", 100*share),
			"budget", fmt.Sprintf("%.1f%%", 100*t.cfg.Budget), "collections", r.Cycles-st.base.Cycles)
		st.percent = next
		t.set(next)
	}
	st.base, st.since = r, now
}

// next is the target that follows percent when the collector took share
// of the CPU at it.
func (t *Tuner) next(percent int, share float64) int {
	switch {
	case share > t.cfg.Budget && percent < t.cfg.Ceiling:
		return min(t.cfg.Ceiling, percent*2)
	case share < t.cfg.Budget/3 && percent > t.cfg.Floor:
		return max(t.cfg.Floor, percent/2)
	}
	return percent
}

// Share is the part of the CPU the program used between two readings
// that the collector took from it: 0 when it used none.
func Share(from, to Reading) float64 {
	used := to.Used - from.Used
	if used <= 0 {
		return 0
	}
	return max(0, to.Taken-from.Taken) / used
}

// runtimeSamples are the runtime/metrics a Reading is made of.
var runtimeSamples = []string{
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/gc/mark/idle:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/cpu/classes/idle:cpu-seconds",
	"/gc/cycles/total:gc-cycles",
}

// readRuntime reads the process's collector. Marking on cores that would
// otherwise idle is left out of both sides: it took nothing from the
// program.
func readRuntime() Reading {
	s := make([]metrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	gc, idleMark, total, idle := s[0].Value.Float64(), s[1].Value.Float64(), s[2].Value.Float64(), s[3].Value.Float64()
	return Reading{Taken: gc - idleMark, Used: total - idle - idleMark, Cycles: s[4].Value.Uint64()}
}
