package realm

import (
	"context"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/realm/internal/approvals"
	"github.com/zerorealm/zerorealm/realm/internal/decide"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
)

// The twin command service (realm/internal/twins/command) and its API
// (realm/internal/twins) reach the rest of the realm through these
// adapters: the realm's decisions, audit, step-ups, trust and presence.

// twinAdapter is the realm as the twin packages need it.
type twinAdapter struct{ r *Realm }

func principalOf(op command.Operator) edge.Principal {
	return edge.Principal{Session: op.Session, Avatar: op.Avatar, Agent: op.Agent}
}

// Decide decides for a person or an agent: viewing a twin, the agent's
// delegation names the twin (or one of its actuators) by the same id.
func (t twinAdapter) Decide(ctx context.Context, sc *scenes.Scene, op command.Operator, as trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision {
	return t.r.decisions.DecideEither(ctx, sc, principalOf(op), as, action, resource, extra)
}

func (t twinAdapter) DecideAgent(ctx context.Context, sc *scenes.Scene, op command.Operator, act agents.Action, resource policy.UID, extra map[string]any) (policy.Decision, audit.Event, bool, error) {
	return t.r.decisions.EvaluateAgent(ctx, sc, principalOf(op), act, resource, extra)
}

func (t twinAdapter) ResumeAgent(ctx context.Context, token string) (command.Operator, error) {
	p, err := t.r.edge.ResumeAgent(ctx, token)
	return command.Operator{Avatar: p.Avatar, Agent: p.Agent}, err
}

// Assess reads the trust hub, which start makes after the API.
func (t twinAdapter) Assess(ctx context.Context, sess session.Session) trust.Assessment {
	return t.r.trust.Assess(ctx, sess)
}

func (t twinAdapter) WhereIs(sceneID, avatarID, sessionID string) (string, fmt.Stringer) {
	st := t.r.live.WhereIs(sceneID, avatarID, sessionID)
	return st.Zone, st
}

// twinSubject is the Cedar context and principal of an operator, as every
// decision of the realm builds them.
func twinSubject(op command.Operator, as trust.Assessment) (map[string]any, policy.Entity) {
	return decide.Subject(principalOf(op), as)
}

// newTwinAPI makes the twin routes' handlers; they run only once the
// realm is ready, by when startTwins has bound the service.
func (r *Realm) newTwinAPI() *twins.API {
	a := twinAdapter{r}
	// A console feed ends when its session ends, as the realm WebSocket
	// does (edge.WatchSessionEnd).
	watch := func(ctx context.Context, sess session.Session, end func(reason string)) func() {
		connected := r.cfg.Clock.Now()
		return edge.WatchSessionEnd(edge.SessionBound{Ctx: ctx, Sess: sess, LastUse: func() time.Time { return connected }, End: end}, r.sessions, r.cfg.SessionIdle, r.cfg.Clock, r.log)
	}
	return twins.New(twins.Deps{Edge: r.edge, Decider: a, Trust: a, Audit: r.decisions, Origins: r.origins, WatchSession: watch,
		MaxFeedsPerAvatar: r.cfg.MaxTwinFeedsPerAvatar})
}

// startTwins runs after sessions and step-ups: the service signs with the
// node's ring key, forwards revocations to gateways and starts the
// simulated ones; then the grant key is announced and the API bound.
func (r *Realm) startTwins(ctx context.Context, bg context.Context) error {
	a := twinAdapter{r}
	err := r.twins.Start(ctx, command.Deps{
		Conn: r.nc, Prefix: r.cfg.Prefix, Store: r.store, Key: r.keys.Active, Embedded: r.embedded, Tracer: r.tracer,
		Decider: a, Agents: a, Approvals: r.approvalQueue, Resumer: a, Subject: twinSubject, Auditor: r.decisions, StepUps: r.stepups, Trust: r.trust, Locator: a,
		Sessions: r.sessions, Avatars: r.avatars, Events: r.twinAPI.Events(), CommandTimed: r.timings.TwinCommand, Clock: r.cfg.Clock,
	})
	if err != nil {
		return err
	}
	revocations, err := r.sessions.Revocations(bg)
	if err != nil {
		return fmt.Errorf("realm: revocation feed for gateways: %w", err)
	}
	r.bgDone.Go(func() { r.twins.Feed().ForwardRevocations(revocations) })
	if announce := r.keys.GrantKeyAnnouncer(r.twins.GrantKey(), func(b []byte) error { return r.nc.Publish(twin.KeySubject(r.cfg.Prefix), b) }, r.log); announce != nil {
		r.bgDone.Go(func() { announce(bg) })
	}
	// An agent revocation's maker tells the gateways at once, a node told of it
	// repeats it; each ends the fallen agents' realm WebSockets and presence.
	r.agents.Revocations().OnRevoke(func(ids ...string) { r.twins.Feed().RevokeAgents(ids...); r.live.EndAgents(ids...) })
	r.agents.Revocations().OnHear(func(ids ...string) { r.twins.Feed().RememberAgents(ids...); r.live.EndAgents(ids...) })
	approvals.Register(r.approvalQueue, command.ApprovalKind, r.twins)
	r.bgDone.Go(func() { r.approvals.Reconcile(bg) }) // every kind is registered now
	r.twinAPI.Bind(r.twins, r.log)
	return nil
}
