package command

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/policy"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

const (
	// ApprovalTTL is how long a critical command waits for its approver.
	ApprovalTTL = 10 * time.Minute
	// idempotencyTTL is how long a command's answer is kept for a retry
	// with the same Idempotency-Key.
	idempotencyTTL = 10 * time.Minute
	// simulatedJournalEntries bounds a simulated gateway's journal.
	simulatedJournalEntries = 1 << 14
)

// Operator is who a command or an approval acts for: a checked session
// and the avatar it belongs to, or an authenticated agent and its owner.
type Operator struct {
	Session session.Session
	Avatar  *avatar.Avatar
	// Agent, when set, is the agent that acts, within its delegation:
	// Avatar is then its owner and Session is empty.
	Agent *agents.Agent
}

// ID is the principal that acts: the agent, or the avatar.
func (op Operator) ID() string {
	if op.Agent != nil {
		return op.Agent.ID
	}
	return op.Avatar.ID
}

// AgentDecider decides an agent's action: its delegation's scope, limits
// and the agent's trust (agents.Guard.Evaluate), then the scene's Cedar
// policies with the agent as the principal and context.agent, then
// spends what the action uses of the delegation's limits. It returns the
// audit event of the decision, which the caller records with what came of
// it. An error is a failure to decide (the delegation revoked since the
// request was authenticated, the revocation list unknown, the store
// down): the action must not run.
//
// awaitsOwner reports that the delegation wants the owner's approval of
// this action first (a high-risk command): then Cedar has not decided and
// nothing is spent, and the caller queues the action for the owner.
type AgentDecider interface {
	DecideAgent(ctx context.Context, sc *scenes.Scene, op Operator, act agents.Action, resource policy.UID, extra map[string]any) (d policy.Decision, ev audit.Event, awaitsOwner bool, err error)
}

// AgentApprovals is the owner's approval queue (approval.Queue), where an
// agent's high-risk command waits.
type AgentApprovals interface {
	Enqueue(ctx context.Context, r approval.Request) (approval.Pending, error)
}

// AgentResumer re-establishes the agent of an approved command: its chain
// verified again and not revoked, and its owner.
type AgentResumer interface {
	ResumeAgent(ctx context.Context, token string) (Operator, error)
}

// Decider asks a scene's policies and queues the answer for the audit
// log, without waiting for it to be stored.
type Decider interface {
	Decide(ctx context.Context, sc *scenes.Scene, op Operator, as trust.Assessment, action string, resource policy.UID, extra map[string]any) policy.Decision
}

// Subject is what every Cedar request of op carries: its context (the
// session's trust and passkey) and its principal entity. The service
// builds command requests itself, with the scene's entities converted
// once, rather than through Decider.
type Subject func(op Operator, as trust.Assessment) (context map[string]any, principal policy.Entity)

// Auditor records a command's decision and outcome, queued without
// waiting for the record to be stored: the command has happened (or been
// refused) whether or not the record is there yet.
type Auditor interface {
	RecordQueued(ctx context.Context, ev audit.Event)
}

// StepUps spends a session's step-up proof for a digest.
type StepUps interface {
	Consume(ctx context.Context, sessionID string, digest []byte) error
}

// TrustReader is a session's trust now.
type TrustReader interface {
	Assess(ctx context.Context, sess session.Session) trust.Assessment
}

// Locator is where the realm sees an avatar in a scene: the zone its
// presence was admitted into ("" for none), and a description of that
// standing for a refusal's reason.
type Locator interface {
	WhereIs(sceneID, avatarID, sessionID string) (zone string, seen fmt.Stringer)
}

// SessionReader reads a session, for the requester of an approved command.
type SessionReader interface {
	Get(ctx context.Context, sessionID string) (session.Session, error)
}

// AvatarReader reads an avatar, for the requester of an approved command.
type AvatarReader interface {
	Get(ctx context.Context, avatarID string) (*avatar.Avatar, error)
}

// Events is told what consoles follow: a command carried out or refused
// by its gateway, a critical command starting to wait for approval, an
// actuator's state reported by its gateway.
type Events interface {
	Outcome(a *Answer)
	Approval(a *Answer)
	State(twinID, actuatorID string, s twin.State)
}

// InProcess connects a simulated gateway to the embedded NATS server.
type InProcess interface {
	ConnectInProcess(name string, opts ...nats.Option) (*nats.Conn, error)
}

// Config is what Prepare needs, before the NATS server starts.
type Config struct {
	Catalog *scenes.Catalog
	// DataDir holds GatewaysFile, the enrolled gateways.
	DataDir string
	// Simulate makes a simulated gateway for every twin that has no
	// enrolled one (an embedded NATS server).
	Simulate bool
	Logger   *slog.Logger
}

// Deps is what Start needs, once the store, sessions and step-ups run.
type Deps struct {
	Conn   *nats.Conn
	Prefix string
	Store  *store.Store
	// Key is the node's active ring key: it signs grants and revocation
	// notices, so each node's notices carry its own sequence numbers.
	Key *ecdsa.PrivateKey
	// Embedded connects the simulated gateways; nil when Simulate is off.
	Embedded InProcess
	// Tracer, when set, records each grant's delivery, and the simulated
	// gateways' carrying it out, as spans of the command's trace.
	Tracer trace.Tracer

	Decider Decider
	Subject Subject
	// Agents, Approvals and Resumer serve agents' commands; without
	// Agents an agent's command is refused, without Approvals one that
	// needs its owner's approval is.
	Agents    AgentDecider
	Approvals AgentApprovals
	Resumer   AgentResumer
	Auditor   Auditor
	StepUps   StepUps
	Trust     TrustReader
	Locator   Locator
	Sessions  SessionReader
	Avatars   AvatarReader
	Events    Events
	// ResolveEvery is how often the node looks for commands another node
	// lost track of between the gateway's answer and storing it, and
	// settles them (resolve.go); default 5s.
	ResolveEvery time.Duration
	// CommandTimed, when set, is told how long each grant took from its
	// signing to the gateway's verified acknowledgement, by the gateway's
	// result (done, refused, ...) or undelivered.
	CommandTimed func(outcome string, took time.Duration)
	// Clock dates approvals and judges their requester's session, and is
	// the clock of grants and of the simulated gateways that check them;
	// nil is the system's. An enrolled gateway checks grants against its
	// own clock.
	Clock clock.Clock
}

// Service is one node's twin command service.
type Service struct {
	log     *slog.Logger
	reg     *twin.Registry
	sceneOf map[string]*scenes.Scene
	// entities are the Cedar entities of each scene with twins, converted
	// once: scenes do not change while the realm runs, and building and
	// converting them for every command was a tenth of its CPU and over a
	// third of its allocations.
	entities map[*scenes.Scene]*policy.Entities
	gateways *Gateways

	// Set by Start.
	deps      Deps
	guard     *twin.Guard
	signer    *twin.Signer
	signerHex string // the grant key's checksummed hex, for answers
	disp      *twin.Dispatcher
	feed      *twin.RevocationFeed
	approvals *store.Bucket
	commands  *idempotency.Keys
	settle    *settler
	stopBg    context.CancelFunc
	bg        sync.WaitGroup
	telemetry *nats.Subscription
	closed    atomic.Bool

	// unsentAfter is the age past which a claimed key with no command in
	// flight is freed (freeUnsent); tests shorten it.
	unsentAfter time.Duration
	// crit settles approved critical commands (critical.go).
	crit criticalSettle
}

// Prepare builds the registry from the scenes' twins and the gateway
// credentials the NATS server must know before it starts.
func Prepare(cfg Config) (*Service, error) {
	all, sceneOf := TwinsOf(cfg.Catalog)
	reg, err := twin.NewRegistry(all)
	if err != nil {
		return nil, fmt.Errorf("realm: twins: %w", err)
	}
	enrolled, err := ReadEnrolledGateways(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{log: log, reg: reg, sceneOf: sceneOf, entities: map[*scenes.Scene]*policy.Entities{}, gateways: newGateways(enrolled)}
	for _, sc := range sceneOf {
		// A scene whose entities do not convert is left out: its commands
		// then convert them each time, and are denied with the reason.
		if e, err := policy.NewEntities(sc.Entities()); err == nil {
			s.entities[sc] = e
		} else {
			log.Warn("scene entities are not valid Cedar; its commands will be denied", "scene", sc.ID, "err", err)
		}
	}
	if cfg.Simulate {
		if err := s.gateways.simulateUnenrolled(reg.Twins()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Start signs with the node's key, opens the approvals and results
// buckets, starts the revocation feed and the dispatcher, follows
// telemetry and starts the simulated gateways.
func (s *Service) Start(ctx context.Context, d Deps) error {
	d.Clock = clock.Or(d.Clock)
	s.deps = d
	var err error
	if s.signer, err = twin.NewSigner(d.Key); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	s.signerHex = s.signer.Address().Hex()
	if s.guard, err = twin.NewGuard(s.reg, twin.GuardConfig{Now: d.Clock.Now}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if s.approvals, err = d.Store.Bucket(ctx, store.BucketConfig{Name: "twin-approvals", TTL: ApprovalTTL, Sealed: true}); err != nil {
		return fmt.Errorf("realm: approvals: %w", err)
	}
	// A replica that lags after an outage must not call a key absent that
	// its create just found held: the leader confirms (as for transfers').
	results, err := d.Store.Bucket(ctx, store.BucketConfig{Name: "twin-commands", TTL: idempotencyTTL, Sealed: true, LeaderConfirmsAbsence: true})
	if err != nil {
		return fmt.Errorf("realm: command results: %w", err)
	}
	s.commands = idempotency.New(results, "twin-commands")
	inflight, err := d.Store.Bucket(ctx, store.BucketConfig{Name: "twin-inflight", TTL: idempotencyTTL, Sealed: true})
	if err != nil {
		return fmt.Errorf("realm: commands in flight: %w", err)
	}
	if s.feed, err = twin.StartRevocationFeed(twin.FeedConfig{Conn: d.Conn, Prefix: d.Prefix, Signer: s.signer, Logger: s.log, Now: d.Clock.Now}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if s.disp, err = twin.NewDispatcher(twin.DispatcherConfig{Conn: d.Conn, Prefix: d.Prefix, Signer: s.signer, GatewayKey: s.gateways.Key, Logger: s.log, Tracer: d.Tracer, Now: d.Clock.Now}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	s.settle = &settler{log: s.log, inflight: inflight, commands: s.commands, disp: s.disp, gateways: s.gateways, auditor: d.Auditor, events: d.Events, clock: d.Clock}
	s.settle.critical = s.settleCritical
	if s.telemetry, err = twin.FollowTelemetry(d.Conn, d.Prefix, s.reg, s.gateways.Key, d.Events.State); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	for id, kp := range s.gateways.sims {
		if err := s.startSimulatedGateway(ctx, id, kp); err != nil {
			return err
		}
	}
	s.unsentAfter = defaultUnsentAfter
	every := d.ResolveEvery
	if every <= 0 {
		every = defaultResolveEvery
	}
	bg, stop := context.WithCancel(context.Background())
	s.stopBg = stop
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.settle.reconcile(bg, every)
	}()
	s.log.Info("twins ready", "twins", len(s.reg.Twins()), "simulated_gateways", len(s.gateways.sims), "enrolled_gateways", len(s.gateways.enrolled), "grant_key", s.signerHex)
	return nil
}

// GatewayFeed tells the twins' gateways, over the revocation feed, what
// was revoked: sessions, delegations, agents and their owners. Valid once
// the service has started.
type GatewayFeed struct{ s *Service }

// Feed is the revocation feed to the gateways.
func (s *Service) Feed() GatewayFeed { return GatewayFeed{s} }

// ForwardRevocations tells the gateways of every revoked session, until
// revocations is closed (when the realm stops).
func (f GatewayFeed) ForwardRevocations(revocations <-chan session.Revocation) {
	for rev := range revocations {
		if err := f.s.feed.Revoke(rev.SessionID); err != nil {
			f.s.log.Warn("publish revocation to gateways", "session", rev.SessionID, "err", err)
		}
	}
}

// RevokeAgents tells the gateways at once of revoked delegations,
// suspended agents and owners who revoked their agents (see
// twin.RevocationNotice): a grant naming any of them is refused.
func (f GatewayFeed) RevokeAgents(ids ...string) {
	if f.s.closed.Load() {
		return // the feed is gone; gateways refuse everything once it is stale
	}
	if err := f.s.feed.RevokeAgents(ids...); err != nil {
		// The heartbeats repeat them within a second.
		f.s.log.Warn("publish agent revocations to gateways", "ids", ids, "err", err)
	}
}

// RememberAgents has the following heartbeats to the gateways name ids
// (twin.RevocationFeed.RememberAgents): what another node revoked and
// told the gateways of already.
func (f GatewayFeed) RememberAgents(ids ...string) { f.s.feed.RememberAgents(ids...) }

func (s *Service) startSimulatedGateway(ctx context.Context, twinID string, kp nkeys.KeyPair) error {
	t, _ := s.reg.Twin(twinID)
	pub, _ := kp.PublicKey()
	nc, err := s.deps.Embedded.ConnectInProcess("zerorealm-gateway-"+twinID, nats.Nkey(pub, kp.Sign))
	if err != nil {
		return fmt.Errorf("realm: simulated gateway %s: %w", twinID, err)
	}
	key, err := twin.GenerateSigner()
	if err != nil {
		nc.Close()
		return err
	}
	// A simulated gateway's journal lives in memory, as its actuators do,
	// and remembers fewer commands than a real one: seconds of a
	// benchmark's load rather than tens of megabytes.
	journal, _ := gateway.OpenJournal(gateway.JournalConfig{MaxEntries: simulatedJournalEntries}, nil)
	g, err := gateway.New(gateway.Config{
		Twin: twinID, Actuators: t.Actuators, Conn: nc, Prefix: s.deps.Prefix, Journal: journal,
		RealmKeys: []common.Address{s.signer.Address()}, Signer: key, Horizon: s.guard.Horizon(),
		Logger: s.log.With("component", "simulated-gateway"), Tracer: s.deps.Tracer, Now: s.deps.Clock.Now,
	})
	if err == nil {
		err = g.Start(ctx)
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("realm: simulated gateway %s: %w", twinID, err)
	}
	s.gateways.addSimulated(twinID, g, nc, key.Address())
	return nil
}

// Close stops the simulated gateways and the feed; gateways elsewhere
// then see the feed go stale and refuse everything, as they should. It is
// safe on a service that never started.
func (s *Service) Close() {
	if s == nil {
		return
	}
	s.closed.Store(true)
	if s.stopBg != nil {
		s.stopBg()
		s.bg.Wait()
	}
	s.gateways.closeSimulated()
	if s.telemetry != nil {
		_ = s.telemetry.Unsubscribe()
	}
	if s.feed != nil {
		s.feed.Close()
	}
}

// Gateways are the twins' gateways: the enrolled ones, the ones this
// node simulates, and the key that signs each one's acknowledgements.
func (s *Service) Gateways() *Gateways { return s.gateways }

// Registry is the twins of the realm's scenes and their last states.
func (s *Service) Registry() *twin.Registry { return s.reg }

// SceneOf is the scene twinID belongs to.
func (s *Service) SceneOf(twinID string) (*scenes.Scene, bool) {
	sc, ok := s.sceneOf[twinID]
	return sc, ok
}

// GrantKey is the address that signs this node's grants.
func (s *Service) GrantKey() common.Address {
	if s == nil {
		return common.Address{} // a node that runs no twins signs no grants
	}
	return s.signer.Address()
}

// SetGuard replaces the checks before policy; a benchmark lifts the rate
// limits with it, to measure the machinery rather than the limits.
func (s *Service) SetGuard(g *twin.Guard) { s.guard = g }

// Dispatcher signs and delivers grants.
func (s *Service) Dispatcher() *twin.Dispatcher { return s.disp }
