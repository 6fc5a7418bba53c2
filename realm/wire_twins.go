package realm

import (
	"context"
	"fmt"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/policy"
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
	return edge.Principal{Session: op.Session, Avatar: op.Avatar}
}

func (t twinAdapter) Decide(ctx context.Context, sc *scenes.Scene, op command.Operator, as trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision {
	return t.r.decide(ctx, sc, principalOf(op), as, action, resource, extra)
}

func (t twinAdapter) Consume(ctx context.Context, sessionID string, digest []byte) error {
	return t.r.stepups.consume(ctx, sessionID, digest)
}

func (t twinAdapter) Assess(ctx context.Context, sess session.Session) trust.Assessment {
	return t.r.trust.Assess(ctx, sess)
}

func (t twinAdapter) WhereIs(sceneID, avatarID, sessionID string) (string, fmt.Stringer) {
	st := t.r.presence.whereIs(sceneID, avatarID, sessionID)
	return st.zone, st
}

// twinSubject is the Cedar context and principal of an operator, as every
// decision of the realm builds them.
func twinSubject(op command.Operator, as trust.Assessment) (map[string]any, policy.Entity) {
	p := principalOf(op)
	return policyContext(p, as), avatarEntity(p)
}

// watchTwinFeed ends a console feed when its session ends, as the realm
// WebSocket does (edge.WatchSessionEnd).
func (r *Realm) watchTwinFeed(ctx context.Context, sess session.Session, done <-chan struct{}, lastUse func() time.Time, end func(reason string)) {
	edge.WatchSessionEnd(edge.SessionBound{Ctx: ctx, Sess: sess, Done: done, LastUse: lastUse, End: end}, r.sessions, r.cfg.SessionIdle, r.log)
}

// newTwinAPI makes the twin routes' handlers; they run only once the
// realm is ready, by when startTwins has bound the service.
func (r *Realm) newTwinAPI() *twins.API {
	a := twinAdapter{r}
	return twins.New(twins.Deps{Edge: r.edge, Decider: a, Trust: a, Audit: queuedAuditor{r}, Origins: r.origins, WatchSession: r.watchTwinFeed})
}

// prepareTwins builds the registry and the gateway credentials the NATS
// server must know before it starts. It runs after the scenes load.
func (r *Realm) prepareTwins() (err error) {
	r.twins, err = command.Prepare(command.Config{Catalog: r.catalog, DataDir: r.cfg.DataDir, Simulate: len(r.cfg.NATS) == 0, Logger: r.log})
	return err
}

// natsClientListen is where the embedded server opens its TCP port: only
// when an enrolled gateway will connect through it. Simulated gateways
// connect in-process, and nothing else has any business there.
func (r *Realm) natsClientListen() string {
	if r.twins == nil || !r.twins.HasEnrolledGateways() {
		return ""
	}
	return r.cfg.NATSListen
}

// startTwins runs after sessions and step-ups: the service signs with the
// node's ring key, forwards revocations to gateways and starts the
// simulated ones; then the grant key is announced and the API bound.
func (r *Realm) startTwins(ctx context.Context, bg context.Context) error {
	a := twinAdapter{r}
	err := r.twins.Start(ctx, command.Deps{
		Conn: r.nc, Prefix: r.cfg.Prefix, Store: r.store, Key: r.keys.Active, Embedded: r.embedded, Tracer: r.tracer,
		Decider: a, Subject: twinSubject, Auditor: queuedAuditor{r}, StepUps: a, Trust: r.trust, Locator: a,
		Sessions: r.sessions, Avatars: r.avatars, Events: r.twinAPI.Events(),
	})
	if err != nil {
		return err
	}
	revocations, err := r.sessions.Revocations(bg)
	if err != nil {
		return fmt.Errorf("realm: revocation feed for gateways: %w", err)
	}
	r.bgDone.Add(1)
	go func() {
		defer r.bgDone.Done()
		r.twins.ForwardRevocations(revocations)
	}()
	if announce := r.keys.GrantKeyAnnouncer(r.twins.GrantKey(), func(b []byte) error { return r.nc.Publish(twin.KeySubject(r.cfg.Prefix), b) }, r.log); announce != nil {
		r.bgDone.Add(1)
		go func() { defer r.bgDone.Done(); announce(bg) }()
	}
	r.twinAPI.Bind(r.twins, r.log)
	return nil
}

// stopTwins stops the simulated gateways and the feed, and ends the
// consoles.
func (r *Realm) stopTwins() {
	r.twins.Close()
	r.twinAPI.Close()
}
