package agents

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/zerorealm/zerorealm/trust"
)

// An agent's trust comes from its behaviour measured against its own
// history, on the node that serves it (docs/agents.md, "Trust"). It has a
// person's states: trusted; step-up, where every action waits for the
// owner's approval; suspended, where nothing is allowed until the owner
// reinstates the agent. Suspension is made durable by the Guard, so every
// node refuses the agent.

// BehaviourConfig tunes the score. Zero values are the documented defaults.
type BehaviourConfig struct {
	// HalfLife is how fast refusals and edges are forgotten. Default 10m.
	HalfLife time.Duration
	// BurstWindow and BurstCount: BurstCount out-of-scope attempts within
	// BurstWindow suspend the agent at once. Defaults 1m and 5. An agent
	// that keeps asking for what it was not given is probing, or has been
	// taken over.
	BurstWindow time.Duration
	BurstCount  int
	// StepUpBelow and SuspendBelow are the score thresholds. Defaults 0.6
	// and 0.3.
	StepUpBelow, SuspendBelow float64
	// MaxAgents bounds the agents followed on a node; the idlest are
	// forgotten first. Default 100000.
	MaxAgents int
}

func (c *BehaviourConfig) defaults() {
	if c.HalfLife <= 0 {
		c.HalfLife = 10 * time.Minute
	}
	if c.BurstWindow <= 0 {
		c.BurstWindow = time.Minute
	}
	if c.BurstCount <= 0 {
		c.BurstCount = 5
	}
	if c.StepUpBelow <= 0 {
		c.StepUpBelow = 0.6
	}
	if c.SuspendBelow <= 0 {
		c.SuspendBelow = 0.3
	}
	if c.MaxAgents <= 0 {
		c.MaxAgents = 100_000
	}
}

// Weights of the evidence, as penalties subtracted from 1. An out-of-scope
// attempt weighs most: a well-behaved agent knows its delegation. Limits
// reached weigh half: an agent may legitimately run into its budget.
const (
	outOfScopeWeight = 0.15
	limitWeight      = 0.075
	// maxLimitWeight: running into limits alone never suspends an agent
	// (the limit already stops it), but with other evidence it counts.
	maxLimitWeight = 0.3
	// spikeFactor: a minute with more than this many times the agent's
	// usual actions per minute (and more than spikeFloor) is a spike.
	spikeFactor    = 4.0
	spikeFloor     = 30
	spikePenalty   = 0.15
	maxSpikeWeight = 0.3
	// velocityStart: spending more than this share of a day's budget
	// within an hour begins to cost, up to velocityPenalty for all of it.
	velocityStart   = 0.5
	velocityPenalty = 0.3
	// edgeShare: when more than this share of recent actions sit at the
	// edge of the envelope (the highest risk allowed, or more than 90 %
	// of the per-transfer value), the agent is pushing its limits.
	edgeShare   = 0.5
	edgePenalty = 0.15
	// baselineAlpha is the weight of the newest minute in the usual rate.
	baselineAlpha = 0.2
)

// Event is one thing an agent did or tried, as the behaviour sees it.
type Event struct {
	At      time.Time
	Outcome Outcome
	Reason  Reason // of a refusal
	// Value moved by a transfer, and the day's budget it was moved from.
	Value, DailyLimit uint64
	// Edge: the action sat at the edge of the delegation's envelope.
	Edge bool
}

// Assessment is an agent's trust now, with the weights that made it.
// A busy agent is assessed on every action and its factors are read only
// when it is suspended (the reason of the deny and of the audit), so they
// are kept as numbers and formatted by Factors.
type Assessment struct {
	State trust.State
	Score float64
	f     factorWeights
}

// factorWeights are what lowered an agent's score; zero is "not a factor".
type factorWeights struct {
	refusals, limits, spikes float64
	// spent is the share of a day's budget moved within the hour,
	// velocity the penalty it earned.
	spent, velocity float64
	// edgeShare is the share of recent actions at the envelope's edge.
	edgeShare float64
	suspended string // why the agent was suspended outright
}

// Factors says what lowered the score, one phrase each, in a fixed order.
func (a Assessment) Factors() []string {
	f := a.f
	var out []string
	if f.refusals > 0 {
		out = append(out, fmt.Sprintf("refusals -%.2f", f.refusals))
	}
	if f.limits > 0 {
		out = append(out, fmt.Sprintf("limits reached -%.2f", f.limits))
	}
	if f.spikes > 0 {
		out = append(out, fmt.Sprintf("rate spikes -%.2f", f.spikes))
	}
	if f.spent > 0 {
		out = append(out, fmt.Sprintf("spending %.0f%% of a day's budget within the hour -%.2f", 100*f.spent, f.velocity))
	}
	if f.edgeShare > 0 {
		out = append(out, fmt.Sprintf("%.0f%% of recent actions at the envelope's edge -%.2f", 100*f.edgeShare, edgePenalty))
	}
	if f.suspended != "" {
		out = append(out, f.suspended)
	}
	return out
}

type decayed struct {
	v  float64
	at time.Time
}

func (d *decayed) value(now time.Time, halfLife time.Duration) float64 {
	if d.at.IsZero() || !now.After(d.at) {
		return d.v
	}
	return d.v * math.Exp2(-float64(now.Sub(d.at))/float64(halfLife))
}

func (d *decayed) add(now time.Time, w float64, halfLife time.Duration) {
	d.v, d.at = d.value(now, halfLife)+w, now
}

type agentHistory struct {
	refusals decayed // out-of-scope attempts, and proofs by another key
	limits   decayed // refusals at a limit
	edges    decayed // actions at the edge
	actions  decayed // all actions, same decay, to weigh edges by
	spent    decayed // share of the daily budget, half-life 1h
	scopes   []time.Time
	// minute is the current UTC minute's action count; baseline the
	// agent's usual count per minute (EWMA over minutes with actions, and
	// the empty minutes between them).
	minute     time.Time
	count      int
	spiked     bool // this minute already counted as a spike
	baseline   float64
	spike      decayed
	suspended  string // why, once the burst rule fired
	lastActive time.Time
}

// Behaviour follows agents' behaviour on this node. Safe for concurrent use.
type Behaviour struct {
	cfg   BehaviourConfig
	clock trust.Clock

	mu     sync.Mutex
	agents map[string]*agentHistory
}

// NewBehaviour returns a Behaviour reading clock; nil clock is the system's.
func NewBehaviour(cfg BehaviourConfig, clock trust.Clock) *Behaviour {
	cfg.defaults()
	if clock == nil {
		clock = trust.SystemClock{}
	}
	return &Behaviour{cfg: cfg, clock: clock, agents: map[string]*agentHistory{}}
}

// Observe records what agent did and returns its assessment after it.
func (b *Behaviour) Observe(agent string, ev Event) Assessment {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.history(agent, ev.At)
	hl := b.cfg.HalfLife
	h.lastActive = ev.At
	switch ev.Outcome {
	case Deny:
		switch ev.Reason {
		case ReasonOutOfScope, ReasonProofBinding:
			h.refusals.add(ev.At, outOfScopeWeight, hl)
			h.scopes = append(h.scopes, ev.At)
			cut := 0
			for cut < len(h.scopes) && ev.At.Sub(h.scopes[cut]) > b.cfg.BurstWindow {
				cut++
			}
			h.scopes = h.scopes[cut:]
			if len(h.scopes) >= b.cfg.BurstCount && h.suspended == "" {
				h.suspended = fmt.Sprintf("%d out-of-scope attempts within %s", len(h.scopes), b.cfg.BurstWindow)
			}
		case ReasonOverLimit, ReasonRate:
			h.limits.add(ev.At, limitWeight, hl)
		}
	default:
		h.actions.add(ev.At, 1, hl)
		if ev.Edge {
			h.edges.add(ev.At, 1, hl)
		}
		if ev.Value > 0 && ev.DailyLimit > 0 {
			h.spent.add(ev.At, float64(ev.Value)/float64(ev.DailyLimit), time.Hour)
		}
	}
	b.countMinute(h, ev.At)
	return b.assess(h, ev.At)
}

// countMinute updates the rate: a minute with a spike against the agent's
// own baseline adds to the spike penalty.
func (b *Behaviour) countMinute(h *agentHistory, now time.Time) {
	m := now.UTC().Truncate(time.Minute)
	if !m.Equal(h.minute) {
		if !h.minute.IsZero() && m.After(h.minute) {
			h.baseline = (1-baselineAlpha)*h.baseline + baselineAlpha*float64(h.count)
			// The empty minutes in between lower the usual rate too.
			gap := int(m.Sub(h.minute)/time.Minute) - 1
			h.baseline *= math.Pow(1-baselineAlpha, float64(min(gap, 60)))
		}
		h.minute, h.count, h.spiked = m, 0, false
	}
	h.count++
	threshold := math.Max(spikeFloor, spikeFactor*h.baseline)
	if !h.spiked && float64(h.count) > threshold {
		h.spiked = true
		h.spike.add(now, spikePenalty, b.cfg.HalfLife)
	}
}

// Assess returns agent's trust now.
func (b *Behaviour) Assess(agent string) Assessment {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	h, ok := b.agents[agent]
	if !ok {
		return Assessment{State: trust.Trusted, Score: 1}
	}
	return b.assess(h, now)
}

func (b *Behaviour) assess(h *agentHistory, now time.Time) Assessment {
	hl := b.cfg.HalfLife
	var f factorWeights
	score := 1.0
	if r := h.refusals.value(now, hl); r > 0.001 {
		score -= r
		f.refusals = r
	}
	if l := math.Min(h.limits.value(now, hl), maxLimitWeight); l > 0.001 {
		score -= l
		f.limits = l
	}
	if s := math.Min(h.spike.value(now, hl), maxSpikeWeight); s > 0.001 {
		score -= s
		f.spikes = s
	}
	if v := h.spent.value(now, time.Hour); v > velocityStart {
		p := velocityPenalty * math.Min(1, (v-velocityStart)/(1-velocityStart))
		score -= p
		f.spent, f.velocity = v, p
	}
	if a := h.actions.value(now, hl); a >= 4 && h.edges.value(now, hl)/a > edgeShare {
		score -= edgePenalty
		f.edgeShare = h.edges.value(now, hl) / a
	}
	score = math.Max(0, math.Min(1, score))
	state := trust.Trusted
	switch {
	case h.suspended != "":
		state = trust.Suspended
		f.suspended = h.suspended
	case score < b.cfg.SuspendBelow:
		state = trust.Suspended
	case score < b.cfg.StepUpBelow:
		state = trust.StepUp
	}
	return Assessment{State: state, Score: score, f: f}
}

// Forget drops agent's history (the owner reinstated it).
func (b *Behaviour) Forget(agent string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.agents, agent)
}

func (b *Behaviour) history(agent string, now time.Time) *agentHistory {
	h, ok := b.agents[agent]
	if ok {
		return h
	}
	if len(b.agents) >= b.cfg.MaxAgents {
		b.forgetIdle(now)
	}
	h = &agentHistory{}
	b.agents[agent] = h
	return h
}

// forgetIdle drops the agents idle for a day, or else the idlest half.
// A suspended agent stays suspended through its durable record.
func (b *Behaviour) forgetIdle(now time.Time) {
	for id, h := range b.agents {
		if now.Sub(h.lastActive) > MaxLifetime {
			delete(b.agents, id)
		}
	}
	if len(b.agents) < b.cfg.MaxAgents {
		return
	}
	var times []time.Time
	for _, h := range b.agents {
		times = append(times, h.lastActive)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/2]
	for id, h := range b.agents {
		if !h.lastActive.After(cut) {
			delete(b.agents, id)
		}
	}
}
