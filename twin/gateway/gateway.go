package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/internal/tracing"
	"github.com/zerorealm/zerorealm/twin"
)

// Config configures a Gateway. Zero values are the documented defaults;
// Twin, Actuators, RealmKeys and Signer are required.
type Config struct {
	// Twin is the one twin this gateway serves.
	Twin string
	// Actuators are the twin's actuators with their envelopes, as the
	// gateway's own configuration pins them: a grant cannot widen them.
	Actuators []twin.Actuator
	// Drivers move the actuators, by actuator id; default a Sim for each.
	Drivers map[string]Driver
	// Conn is the gateway's NATS connection, needed by Start.
	Conn *nats.Conn
	// Prefix is the realm's subject prefix; default "zr".
	Prefix string
	// RealmKeys are the realm grant keys the gateway trusts, pinned in its
	// configuration. A key rotation signed by a trusted key adds its
	// successor.
	RealmKeys []common.Address
	// Signer is the gateway's own key; it signs acknowledgements and
	// telemetry.
	Signer *twin.Signer
	// MaxSkew is the clock difference tolerated between realm and gateway
	// when checking a grant's validity window; default 500ms.
	MaxSkew time.Duration
	// FeedTimeout is how long the revocation feed may stay silent before
	// every grant is refused; default 3s.
	FeedTimeout time.Duration
	// Horizon is how much full-rate motion one command may ask for; default
	// 10s, as the realm's.
	Horizon time.Duration
	// TelemetryEvery is how often the gateway publishes each actuator's
	// signed state; default 500ms.
	TelemetryEvery time.Duration
	// Workers verify and carry out grants concurrently; default 2. Grants
	// are independent (each has its own nonce and is checked against the
	// actuator's state when its turn comes: the interlocks and the driver
	// call hold the actuator, so grants of one actuator take turns and
	// those of different actuators run together), so their order across
	// workers does not matter. With a journal file, the records of grants
	// in flight together share syncs: more workers carry more grants a
	// second over a slow disk.
	Workers int
	// RotationGrace is how long a rotated-out key still verifies grants it
	// signed just before the rotation; default MaxGrantLifetime.
	RotationGrace time.Duration
	// Journal records the commands the gateway acted on, so that each is
	// carried out at most once and status queries are answered; default
	// one in memory only (OpenJournal with no path), which forgets at each
	// start. A gateway beside a real actuator opens a file.
	Journal *Journal
	// Tracer, when set, records each grant carried out as a server span,
	// a child of the realm's delivery when the grant's message carries
	// its trace context.
	Tracer trace.Tracer
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// maxReplayEntries bounds the nonce cache. Nonces live only as long as
// their grant, so this is thousands of grants a second; past it the gateway
// refuses rather than forget a nonce.
const maxReplayEntries = 1 << 20

// Gateway verifies grants for one twin and drives its actuators.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	actuators map[string]twin.Actuator

	estop atomic.Bool
	// turns hold each actuator for one grant's last checks and driver
	// call, or a stop (a channel of one: waiting for it can be cancelled).
	turns map[string]chan struct{}

	mu      sync.Mutex
	trusted map[common.Address]time.Time // key => retired after (zero: never)
	nonces  map[uint64]time.Time         // nonce => forget after
	revoked map[string]time.Time         // session => forget after
	// revokedAgents are revoked delegations, suspended agents and owners
	// who revoked their agents (see twin.RevocationNotice) => forget after.
	revokedAgents map[string]time.Time
	heartbeat     time.Time // local time of the last valid notice
	feedReconns   uint64    // connection's reconnect count at that notice
	noticeSeq     map[common.Address]uint64
	telemetry     uint64

	accepted atomic.Uint64
	refusals sync.Map // twin.Reason => *atomic.Uint64

	subs    []*nats.Subscription
	cancel  context.CancelFunc
	done    chan struct{}
	workers sync.WaitGroup
}

// New validates cfg. The gateway refuses everything until it has heard a
// fresh revocation notice.
func New(cfg Config) (*Gateway, error) {
	var problems []string
	if !twin.ValidID(cfg.Twin) {
		problems = append(problems, fmt.Sprintf("twin id %q is not valid", cfg.Twin))
	}
	if len(cfg.Actuators) == 0 {
		problems = append(problems, "no actuators")
	}
	if len(cfg.RealmKeys) == 0 {
		problems = append(problems, "no realm keys to trust")
	}
	if cfg.Signer == nil {
		problems = append(problems, "no gateway key")
	}
	if _, err := twin.NewRegistry([]twin.Twin{{ID: cfg.Twin, Actuators: cfg.Actuators}}); cfg.Twin != "" && err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("gateway: invalid configuration: %s", strings.Join(problems, "; "))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "zr"
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 500 * time.Millisecond
	}
	if cfg.FeedTimeout <= 0 {
		cfg.FeedTimeout = 3 * time.Second
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = 10 * time.Second
	}
	if cfg.TelemetryEvery <= 0 {
		cfg.TelemetryEvery = 500 * time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.RotationGrace <= 0 {
		cfg.RotationGrace = twin.MaxGrantLifetime
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{
		cfg: cfg, log: cfg.Logger.With("twin", cfg.Twin), actuators: map[string]twin.Actuator{},
		trusted: map[common.Address]time.Time{}, nonces: map[uint64]time.Time{}, revoked: map[string]time.Time{},
		revokedAgents: map[string]time.Time{}, noticeSeq: map[common.Address]uint64{}, turns: map[string]chan struct{}{},
	}
	drivers := map[string]Driver{}
	for _, a := range cfg.Actuators {
		g.actuators[a.ID] = a
		g.turns[a.ID] = make(chan struct{}, 1)
		if d, ok := cfg.Drivers[a.ID]; ok && d != nil {
			drivers[a.ID] = d
		} else {
			drivers[a.ID] = NewSim(a, SimConfig{Now: cfg.Now})
		}
	}
	g.cfg.Drivers = drivers
	if g.cfg.Journal == nil {
		g.cfg.Journal, _ = OpenJournal(JournalConfig{Now: cfg.Now}, nil) // in memory: cannot fail
	}
	for _, k := range cfg.RealmKeys {
		g.trusted[k] = time.Time{}
	}
	return g, nil
}

// Address is the gateway's key, which the realm pins for its acknowledgements.
func (g *Gateway) Address() common.Address { return g.cfg.Signer.Address() }

// Start subscribes to the twin's commands, the revocation feed and key
// rotations, and publishes telemetry until Close.
func (g *Gateway) Start(ctx context.Context) error {
	nc := g.cfg.Conn
	if nc == nil {
		return errors.New("gateway: Start needs a NATS connection")
	}
	bg, cancel := context.WithCancel(context.Background())
	subscribe := func(subj string, h nats.MsgHandler) error {
		s, err := nc.Subscribe(subj, h)
		if err != nil {
			return fmt.Errorf("gateway: subscribe %s: %w", subj, err)
		}
		g.subs = append(g.subs, s)
		return nil
	}
	// Commands go to a synchronous subscription that the workers read
	// themselves: the connection hands each grant straight to an idle
	// worker, where a handler would add a goroutine between them, a wake-up
	// and a queue on every command's path.
	commands, err := nc.SubscribeSync(twin.CommandSubjects(g.cfg.Prefix, g.cfg.Twin))
	if err != nil {
		err = fmt.Errorf("gateway: subscribe to commands: %w", err)
	} else {
		g.subs = append(g.subs, commands)
	}
	err = errors.Join(err,
		subscribe(twin.RevocationSubject(g.cfg.Prefix), func(m *nats.Msg) { g.HandleNotice(m.Data) }),
		subscribe(twin.StatusSubject(g.cfg.Prefix, g.cfg.Twin), g.answerStatus),
		subscribe(twin.KeySubject(g.cfg.Prefix), func(m *nats.Msg) {
			if err := g.HandleRotation(m.Data); err != nil {
				g.log.Warn("key rotation refused", "err", err)
			}
		}),
	)
	if err == nil {
		// The subscriptions must be in place before the realm is told we exist.
		fctx, cancel := withDefaultTimeout(ctx)
		err = nc.FlushWithContext(fctx)
		cancel()
	}
	if err != nil {
		cancel()
		g.unsubscribe()
		return err
	}
	g.cancel, g.done = cancel, make(chan struct{})
	go g.publishTelemetry(bg)
	for range g.cfg.Workers {
		g.workers.Add(1)
		go func() {
			defer g.workers.Done()
			g.work(bg, commands)
		}()
	}
	return nil
}

// work answers commands until Close. Grants the connection had to drop
// because the workers fell far behind (nats.ErrSlowConsumer) were never
// seen, so nothing moved for them; their senders time out.
func (g *Gateway) work(ctx context.Context, commands *nats.Subscription) {
	for {
		m, err := commands.NextMsgWithContext(ctx)
		switch {
		case err == nil:
			g.answer(ctx, m)
		case errors.Is(err, nats.ErrSlowConsumer):
			g.log.Warn("grants dropped: the gateway fell behind", "dropped", dropped(commands))
		default: // closed, unsubscribed or cancelled
			return
		}
	}
}

func dropped(s *nats.Subscription) int {
	n, _ := s.Dropped()
	return n
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 5*time.Second)
}

func (g *Gateway) unsubscribe() {
	for _, s := range g.subs {
		_ = s.Unsubscribe()
	}
	g.subs = nil
}

// Close stops receiving commands and publishing telemetry. It does not
// close the connection, which the caller owns.
func (g *Gateway) Close() {
	g.unsubscribe()
	if g.cancel != nil {
		g.cancel()
		<-g.done
		g.workers.Wait()
		g.cancel = nil
	}
}

// EmergencyStop engages (true) or releases the local emergency stop. While
// engaged, every actuator is held and only stop commands are accepted.
// Each actuator is stopped at once, and again once a move that passed its
// checks before the stop has reached its driver: when EmergencyStop
// returns, nothing moves (unless ctx ended first, which is logged).
func (g *Gateway) EmergencyStop(ctx context.Context, on bool) {
	g.estop.Store(on)
	if !on {
		return
	}
	for id, d := range g.cfg.Drivers {
		if _, err := d.Stop(ctx); err != nil {
			g.log.Error("emergency stop", "actuator", id, "err", err)
		}
		unlock, err := g.lockActuator(ctx, id)
		if err != nil {
			g.log.Error("emergency stop: a move in flight did not end", "actuator", id, "err", err)
			continue
		}
		if _, err := d.Stop(ctx); err != nil {
			g.log.Error("emergency stop", "actuator", id, "err", err)
		}
		unlock()
	}
}

// Accepted is how many grants the gateway carried out.
func (g *Gateway) Accepted() uint64 { return g.accepted.Load() }

// Refusals counts refused grants by reason.
func (g *Gateway) Refusals() map[twin.Reason]uint64 {
	out := map[twin.Reason]uint64{}
	g.refusals.Range(func(k, v any) bool {
		out[k.(twin.Reason)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

func (g *Gateway) countRefusal(r twin.Reason) {
	v, ok := g.refusals.Load(r)
	if !ok {
		v, _ = g.refusals.LoadOrStore(r, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Read is an actuator's reading now.
func (g *Gateway) Read(actuatorID string) (Reading, bool) {
	d, ok := g.cfg.Drivers[actuatorID]
	if !ok {
		return Reading{}, false
	}
	return d.Read(), true
}

// Revoked reports whether the gateway knows the session to be revoked.
func (g *Gateway) Revoked(sessionID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.revoked[sessionID]
	return ok
}

// AgentRevoked reports whether the gateway knows id (a delegation, an
// agent or an owner; see twin.RevocationNotice) to stop agents' grants.
func (g *Gateway) AgentRevoked(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.revokedAgents[id]
	return ok
}

// TrustedKeys are the realm keys the gateway accepts now.
func (g *Gateway) TrustedKeys() []common.Address {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []common.Address
	for k, until := range g.trusted {
		if until.IsZero() || now.Before(until) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b common.Address) int { return strings.Compare(a.Hex(), b.Hex()) })
	return out
}

func (g *Gateway) answer(ctx context.Context, m *nats.Msg) {
	actuator := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if g.cfg.Tracer != nil {
		var span trace.Span
		ctx, span = g.cfg.Tracer.Start(tracing.Extract(ctx, m.Header), "gateway.execute", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("zerorealm.twin", g.cfg.Twin), attribute.String("zerorealm.actuator", actuator)))
		defer span.End()
		ack := g.Handle(ctx, actuator, m.Data)
		span.SetAttributes(attribute.String("zerorealm.result", string(ack.Ack.Result)), attribute.String("zerorealm.reason", string(ack.Ack.Reason)))
		g.reply(m, ack)
		return
	}
	ack := g.Handle(ctx, actuator, m.Data)
	g.reply(m, ack)
}

// reply sends the signed acknowledgement to the realm that asked.
func (g *Gateway) reply(m *nats.Msg, ack twin.SignedAck) {
	if m.Reply == "" {
		return
	}
	buf := ackBuffers.Get().(*[]byte)
	*buf = ack.AppendEncode((*buf)[:0])
	if err := m.Respond(*buf); err != nil { // copies what it sends
		g.log.Warn("acknowledge", "err", err)
	}
	ackBuffers.Put(buf)
}

// ackBuffers hold acknowledgements being sent.
var ackBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// FeedAge is how long ago the gateway last heard a valid revocation
// notice, or -1 if it never has.
func (g *Gateway) FeedAge() time.Duration {
	now := g.cfg.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.heartbeat.IsZero() {
		return -1
	}
	return now.Sub(g.heartbeat)
}
