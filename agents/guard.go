package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/trust"
)

// Outcome is what the agent domain says about one action, before Cedar.
type Outcome string

// The outcomes.
const (
	// Allow: within scope and limits; Cedar decides next.
	Allow Outcome = "allow"
	// Approve: within scope, but the owner must approve this action (a
	// transfer above the auto-approval limit, a high-risk command, an
	// agent in step-up) with a step-up bound to it. Nothing is spent.
	Approve Outcome = "needs-owner-approval"
	// Deny: refused; Decision.Err says why.
	Deny Outcome = "deny"
)

// Action is one thing an agent asks to do, as the realm describes it.
type Action struct {
	// Name is a Cedar action id (ActionTransferAsset, ...).
	Name string
	// Resource is what it acts on: the Scene joined (or the scene of the
	// zone entered), the Twin viewed, the Actuator commanded ("twin/
	// actuator"), the Collection of the asset transferred.
	Resource Resource
	// Value is what a transfer moves, in base units.
	Value uint64
	// Risk is a command's risk.
	Risk Risk
	// Approved: the owner approved this very action with a step-up bound
	// to it, so the approval step is passed. Scope and limits still apply.
	Approved bool
}

// Decision is the agent domain's answer for one action.
type Decision struct {
	Outcome Outcome
	// Err is the refusal (a *DenyError) when Outcome is Deny.
	Err error
	// Trust is the agent's behavioural trust when it asked.
	Trust Assessment
	// Context is context.agent for the Cedar decision: see AgentContext.
	Context map[string]any

	audit auditContext
}

// Config configures a Guard. Zero values are the documented defaults.
type Config struct {
	// Store holds usage counters and revocations (required; its record
	// key seals them).
	Store *store.Store
	// Roots are the realm keys whose root blocks are honoured (required).
	Roots Roots
	// Logger receives diagnostics. Default: discarded.
	Logger *slog.Logger
	// Clock is the time for validity, proofs, limits and behaviour.
	// Default: the system clock.
	Clock trust.Clock
	// Proof configures DPoP verification.
	Proof ProofConfig
	// Behaviour configures the agents' trust.
	Behaviour BehaviourConfig
	// ClockSkew is how far a block's iat may be ahead. Default 30 s.
	ClockSkew time.Duration
}

// Guard is what the realm calls for agents: Authenticate each request,
// Evaluate each action (then Cedar, with Decision.Context), Spend what an
// allowed action uses, and revoke. Safe for concurrent use.
type Guard struct {
	log       *slog.Logger
	clock     trust.Clock
	verifier  *Verifier
	proofs    *ProofVerifier
	usage     *usage
	revoked   *Revocations
	behaviour *Behaviour
}

// Agent is an authenticated agent: the verified chain it presented, with a
// proof of possession of the leaf's key.
type Agent struct {
	ID    string
	Chain *Chain
}

// Owner is the avatar the agent acts for.
func (a *Agent) Owner() string { return a.Chain.Owner() }

// New opens the guard: declares its buckets and loads the revocations.
func New(ctx context.Context, cfg Config) (*Guard, error) {
	if cfg.Store == nil || cfg.Roots == nil {
		return nil, errors.New("agents: Config.Store and Config.Roots are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = trust.SystemClock{}
	}
	u, err := newUsage(ctx, cfg.Store, cfg.Logger)
	if err != nil {
		return nil, err
	}
	rv, err := openRevocations(ctx, cfg.Store, cfg.Logger, cfg.Clock.Now)
	if err != nil {
		return nil, err
	}
	g := &Guard{
		log: cfg.Logger, clock: cfg.Clock,
		verifier:  NewVerifier(cfg.Roots, cfg.ClockSkew),
		proofs:    NewProofVerifier(cfg.Proof),
		usage:     u,
		revoked:   rv,
		behaviour: NewBehaviour(cfg.Behaviour, cfg.Clock),
	}
	return g, nil
}

// Close gives back this node's unspent leases of the agents' limits (see
// usage) and stops following the revocations.
func (g *Guard) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	g.usage.release(ctx, g.clock.Now())
	g.revoked.Close()
}

// closeTimeout bounds the return of leases on Close: what is not given
// back stays reserved until its period ends.
const closeTimeout = 5 * time.Second

// Nonce is the value of the DPoP-Nonce header this node answers with.
func (g *Guard) Nonce() string { return g.proofs.Nonce(g.clock.Now()) }

// Revocations is the list of revoked delegations and suspended agents.
func (g *Guard) Revocations() *Revocations { return g.revoked }

// Authenticate establishes the agent behind a request: the token verifies
// as a chain, the proof is the leaf holder's, for this request, fresh and
// unused, and nothing in the chain is revoked or suspended. A proof by another
// key for a genuine token (a stolen token) counts against the agent
// whose token it is.
func (g *Guard) Authenticate(ctx context.Context, req ProofRequest) (*Agent, error) {
	now := g.clock.Now()
	c, err := g.verifier.VerifyToken(req.Token, now)
	if err != nil {
		return nil, err
	}
	a := &Agent{ID: c.AgentID(), Chain: c}
	// The proof comes before the revocation check, so that whoever does
	// not hold the key learns nothing about the delegation's state.
	if _, err := g.proofs.verify(req, c.AgentKey(), c.tokenHash(), now); err != nil {
		if ReasonOf(err) == ReasonProofBinding {
			g.observe(ctx, a, Event{At: now, Outcome: Deny, Reason: ReasonProofBinding})
		}
		return nil, err
	}
	if err := g.revoked.Check(c); err != nil {
		return nil, err
	}
	return a, nil
}

// Evaluate decides act for a within its delegation and limits, and
// returns context.agent for Cedar. It spends nothing: after Cedar allows,
// Spend does. A refusal counts in the agent's behaviour; a burst of
// out-of-scope attempts suspends it on every node.
func (g *Guard) Evaluate(ctx context.Context, a *Agent, act Action) (Decision, error) {
	now := g.clock.Now()
	if err := g.revoked.Check(a.Chain); err != nil {
		return Decision{}, err
	}
	leaf := a.Chain.Leaf()
	// Only the counter the action's limits bind is looked at: a
	// transfer's day and a command's minute; joining, entering and
	// viewing count against no limit. When this node's lease of it covers
	// the action, no store is asked (see usage).
	var day, minute counters
	var err error
	switch act.Name {
	case ActionTransferAsset:
		if day, err = g.usage.dayLease(a.Chain.Root().ID, now).view(ctx, a.Chain, act.Value); err != nil {
			return Decision{}, err
		}
	case ActionCommandActuator:
		if minute, err = g.usage.minuteLease(a.Chain.Root().ID, now).view(ctx, a.Chain, 1); err != nil {
			return Decision{}, err
		}
	}
	outcome, edge, derr := g.judge(a.Chain, act, day, minute)
	ev := Event{At: now, Outcome: outcome, Edge: edge}
	if derr != nil {
		ev.Reason = ReasonOf(derr)
	}
	if act.Name == ActionTransferAsset && outcome == Allow {
		ev.Value, ev.DailyLimit = act.Value, leaf.Limits.DailyValue
	}
	as := g.observe(ctx, a, ev)
	switch {
	case as.State == trust.Suspended && outcome != Deny:
		outcome, derr = Deny, deny(ReasonSuspended, "agent %s is suspended: %s", a.ID, strings.Join(as.Factors(), "; "))
	case as.State == trust.StepUp && outcome == Allow && !act.Approved && act.Name != ActionViewTwin:
		outcome = Approve
	}
	d := Decision{Outcome: outcome, Err: derr, Trust: as}
	d.Context = AgentContext(a, as, usedBy(leaf.ID, day, minute), outcome == Approve, act.Approved)
	d.audit = auditContext{chain: a.Chain, trust: as, needsApproval: outcome == Approve, approved: act.Approved}
	switch {
	case day != nil:
		d.audit.used, d.audit.usedValue = "day_value", day[leaf.ID]
	case minute != nil:
		d.audit.used, d.audit.usedValue = "minute_commands", minute[leaf.ID]
	}
	return d, nil
}

// judge applies scope and limits to act, given what the chain's blocks
// used today and this minute.
func (g *Guard) judge(c *Chain, act Action, day, minute counters) (Outcome, bool, error) {
	leaf := c.Leaf()
	if !containsAction(leaf.Actions, act.Name) {
		return Deny, false, deny(ReasonOutOfScope, "delegation %s does not grant %s", leaf.ID, act.Name)
	}
	if !grantsResource(leaf, act) {
		return Deny, false, deny(ReasonOutOfScope, "delegation %s does not cover %s", leaf.ID, act.Resource)
	}
	switch act.Name {
	case ActionTransferAsset:
		if act.Value > leaf.Limits.TransferValue {
			return Deny, false, deny(ReasonOverLimit, "transfer of %d: delegation %s allows %d per transfer", act.Value, leaf.ID, leaf.Limits.TransferValue)
		}
		for i := range c.Blocks {
			b := &c.Blocks[i].Grant
			if used := day[b.ID]; used > math.MaxUint64-act.Value || used+act.Value > b.Limits.DailyValue {
				return Deny, false, deny(ReasonOverLimit, "transfer of %d: delegation %s allows %d a day, %d used today", act.Value, b.ID, b.Limits.DailyValue, used)
			}
		}
		edge := act.Value*10 > leaf.Limits.TransferValue*9
		if act.Value > leaf.Limits.AutoApproveValue && !act.Approved {
			return Approve, edge, nil
		}
		return Allow, edge, nil
	case ActionCommandActuator:
		if !act.Risk.Known() {
			return Deny, false, deny(ReasonMalformed, "command risk %.20q unknown", act.Risk)
		}
		if !act.Risk.AtMost(leaf.Limits.MaxRisk) {
			return Deny, false, deny(ReasonOverLimit, "a %s-risk command: delegation %s allows up to %s", act.Risk, leaf.ID, leaf.Limits.MaxRisk)
		}
		for i := range c.Blocks {
			b := &c.Blocks[i].Grant
			if used := minute[b.ID]; used+1 > uint64(b.Limits.CommandsPerMinute) {
				return Deny, false, deny(ReasonRate, "delegation %s allows %d commands a minute, %d sent this minute", b.ID, b.Limits.CommandsPerMinute, used)
			}
		}
		edge := act.Risk == leaf.Limits.MaxRisk
		if act.Risk == RiskHigh && !act.Approved {
			return Approve, edge, nil
		}
		return Allow, edge, nil
	}
	return Allow, false, nil
}

// Grants reports whether the block grants act's action on its resource,
// its limits aside: what a listing asks, so that it only decides (and
// counts as attempts) what the delegation names.
func (g *Grant) Grants(act Action) bool {
	return containsAction(g.Actions, act.Name) && grantsResource(g, act)
}

func containsAction(actions []string, a string) bool {
	for _, x := range actions {
		if x == a {
			return true
		}
	}
	return false
}

// grantsResource: viewing a twin is granted by the twin or any of its
// actuators (commanding one needs its envelope); everything else by a
// resource that covers the target.
func grantsResource(g *Grant, act Action) bool {
	for _, r := range g.Resources {
		if r.covers(act.Resource) {
			return true
		}
		if act.Name == ActionViewTwin && act.Resource.Kind == KindTwin && r.Kind == KindActuator && strings.HasPrefix(r.ID, act.Resource.ID+"/") {
			return true
		}
	}
	return false
}

// Spend accounts an action Cedar allowed: a transfer's value against every
// block's daily budget, a command against every block's rate, with
// compare-and-set so that concurrent spends on any node never exceed a
// limit. A spend that no longer fits (another request took the room since
// Evaluate) is refused with its reason; nothing is spent then.
func (g *Guard) Spend(ctx context.Context, a *Agent, act Action) error {
	now := g.clock.Now()
	root := a.Chain.Root().ID
	var err error
	switch act.Name {
	case ActionTransferAsset:
		if l := a.Chain.Leaf().Limits.TransferValue; act.Value > l {
			return deny(ReasonOverLimit, "transfer of %d: delegation %s allows %d per transfer", act.Value, a.Chain.Leaf().ID, l)
		}
		err = g.usage.dayLease(root, now).spend(ctx, a.Chain, act.Value,
			func(b *Grant) uint64 { return b.Limits.DailyValue }, ReasonOverLimit, "daily value")
	case ActionCommandActuator:
		err = g.usage.minuteLease(root, now).spend(ctx, a.Chain, 1,
			func(b *Grant) uint64 { return uint64(b.Limits.CommandsPerMinute) }, ReasonRate, "commands per minute")
	}
	// A spend refused here lost a race with another spend after Evaluate
	// saw room: not the agent's behaviour, so not observed.
	return err
}

// observe feeds the behaviour and, the first time an agent is suspended,
// makes the suspension durable so every node refuses it.
func (g *Guard) observe(ctx context.Context, a *Agent, ev Event) Assessment {
	as := g.behaviour.Observe(a.ID, ev)
	if as.State == trust.Suspended && !g.revoked.Suspended(a.ID) {
		why := strings.Join(as.Factors(), "; ")
		if err := g.revoked.Suspend(ctx, a.ID, "behaviour", why); err != nil {
			g.log.Warn("agent suspended on this node; the suspension did not reach the store", "agent", a.ID, "err", err)
		} else {
			g.log.Warn("agent suspended", "agent", a.ID, "owner", a.Owner(), "why", why)
		}
	}
	return as
}

// Reinstate lifts a suspension and forgets the behaviour that led to it.
func (g *Guard) Reinstate(ctx context.Context, agent string) error {
	if err := g.revoked.Reinstate(ctx, agent); err != nil {
		return err
	}
	g.behaviour.Forget(agent)
	return nil
}

// Assess is an agent's current behavioural trust on this node.
func (g *Guard) Assess(agent string) Assessment { return g.behaviour.Assess(agent) }

// TypeAgent is the Cedar entity type of an agent principal.
const TypeAgent = "Agent"

// Principal is the Cedar entity of the agent: Agent::"ag_...", with its
// owner (an Avatar), its delegation, its chain's agents and delegation ids
// (Sets) and its trust state and score. It is converted to Cedar once per
// chain and trust (see trustValues), so callers must not change it.
func Principal(a *Agent, as Assessment) policy.Entity {
	if a.ID != a.Chain.AgentID() {
		// Not the chain's own agent: nothing of the chain's is reused.
		return newPrincipal(a.ID, a.Chain, as)
	}
	return a.Chain.trustValues(as).principal
}

func newPrincipal(id string, c *Chain, as Assessment) policy.Entity {
	cv := c.cedarValues()
	return policy.Entity{
		UID: policy.UID{Type: TypeAgent, ID: id},
		Attrs: map[string]any{
			"owner":       cv.owner,
			"delegation":  c.Leaf().ID,
			"trust_state": string(as.State),
			"trust_score": as.Score,
			"chain":       cv.agents,
			"delegations": cv.ids,
		},
	}
}

// trustValues is the Agent principal for one behavioural trust, converted
// to Cedar once: every attribute but its trust is the chain's own, and
// its trust is the state and the score as Cedar holds it (a decimal of
// four fractional digits), so two scores with the same decimal give the
// same entity. A chain keeps the last one it was asked for, which is
// every action's while its agent's trust holds still; a trust that moved
// is converted again, so an entity never outlives the trust it was made
// from (TestPrincipalFollowsTheTrust).
type trustValues struct {
	state     trust.State
	units     int64 // the score in Cedar's ten-thousandths
	principal policy.Entity
}

func (c *Chain) trustValues(as Assessment) *trustValues {
	m := c.derived()
	units, score, ok := policy.DecimalUnits(as.Score)
	if !ok {
		// No Cedar value: converted per request, and refused there.
		return &trustValues{principal: newPrincipal(m.id, c, as)}
	}
	if tv := m.trust.Load(); tv != nil && tv.state == as.State && tv.units == units {
		return tv
	}
	tv := &trustValues{state: as.State, units: units,
		principal: newPrincipal(m.id, c, Assessment{State: as.State, Score: score})}
	if p, err := tv.principal.Prepare(); err == nil {
		tv.principal = p
	} // else converted per request, and refused there
	m.trust.Store(tv)
	return tv
}

// AgentContext is context.agent, what a Cedar policy reads of an agent
// action:
//
//	id, owner             the agent's id; its owner as Avatar::"..."
//	delegation            the leaf delegation's id
//	chain, delegations    the agents and delegation ids of the chain (Sets)
//	depth                 Long: blocks in the chain (1: the owner's own agent)
//	trust                 {state, score} of the agent's behaviour
//	used                  the leaf's usage so far, before this action, of
//	                      the limit the action counts against: day_value
//	                      for TransferAsset, minute_commands for
//	                      CommandActuator; empty for the rest (a policy
//	                      tests `has` first)
//	limits                the leaf's limits (max_risk a String)
//	needs_approval        Bool: the owner must approve this action
//	approved              Bool: the owner approved it
func AgentContext(a *Agent, as Assessment, used map[string]any, needsApproval, approved bool) map[string]any {
	cv := a.Chain.cedarValues()
	return map[string]any{
		"id":             a.ID,
		"owner":          cv.owner,
		"delegation":     a.Chain.Leaf().ID,
		"chain":          cv.agents,
		"delegations":    cv.ids,
		"depth":          int64(len(a.Chain.Blocks)),
		"trust":          map[string]any{"state": string(as.State), "score": as.Score},
		"used":           used,
		"limits":         cv.limits,
		"needs_approval": needsApproval,
		"approved":       approved,
	}
}

// chainCedar are the values of context.agent that are the chain's, each a
// policy.Value (converted to Cedar once per chain) or, should a conversion
// fail, the Go value (converted per request, and refused there).
type chainCedar struct {
	owner, agents, ids, limits any
}

func (c *Chain) cedarValues() *chainCedar {
	m := c.derived()
	m.cedarOnce.Do(func() {
		l := c.Leaf().Limits
		once := func(v any) any {
			if pv, err := policy.NewValue(v); err == nil {
				return pv
			}
			return v
		}
		m.cedar = chainCedar{
			owner:  once(ownerUID(c.Owner())),
			agents: once(slices.Clone(m.agents)),
			ids:    once(slices.Clone(m.ids)),
			limits: once(map[string]any{
				"transfer_value":      long(l.TransferValue),
				"daily_value":         long(l.DailyValue),
				"auto_approve_value":  long(l.AutoApproveValue),
				"commands_per_minute": int64(l.CommandsPerMinute),
				"max_risk":            string(l.MaxRisk),
			}),
		}
	})
	return &m.cedar
}

// ownerUID is the owner's Cedar entity.
func ownerUID(owner string) policy.UID { return policy.UID{Type: "Avatar", ID: owner} }

// usedBy is context.agent.used: the leaf's use of the counters that were
// read (nil when not read).
func usedBy(leaf string, day, minute counters) map[string]any {
	used := map[string]any{}
	if day != nil {
		used["day_value"] = long(day[leaf])
	}
	if minute != nil {
		used["minute_commands"] = long(minute[leaf])
	}
	return used
}

// long clamps to Cedar's Long.
func long(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// String describes an outcome with its reason, for logs.
func (d Decision) String() string {
	if d.Err != nil {
		return fmt.Sprintf("%s: %v", d.Outcome, d.Err)
	}
	return string(d.Outcome)
}
