package realm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/agents/approval"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/cork"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/netstamp"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/tracing"
	"github.com/zerorealm/zerorealm/realm/internal/apidoc"
	"github.com/zerorealm/zerorealm/realm/internal/approvals"
	"github.com/zerorealm/zerorealm/realm/internal/auditapi"
	"github.com/zerorealm/zerorealm/realm/internal/decide"
	"github.com/zerorealm/zerorealm/realm/internal/delegations"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/internal/market"
	"github.com/zerorealm/zerorealm/realm/internal/mcpapi"
	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/realm/internal/ops"
	"github.com/zerorealm/zerorealm/realm/internal/peerbackground"
	"github.com/zerorealm/zerorealm/realm/internal/scenesapi"
	"github.com/zerorealm/zerorealm/realm/internal/sessiontrust"
	"github.com/zerorealm/zerorealm/realm/internal/timings"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
)

// Realm is one realm node. Create it with New, bind it with Listen, run it
// with Serve.
type Realm struct {
	cfg Config
	log *slog.Logger
	// monitor is the node's start-up state, readiness probe, health
	// endpoints and metrics registry.
	monitor *ops.Monitor
	tampers *node.Tampers // records that did not verify
	timings *timings.Durations

	listener net.Listener
	http     *http.Server
	readyCh  chan struct{}
	// tracer records spans when tracing is on (Config.OTelEndpoint or
	// Config.TracerProvider), nil otherwise; ownTracing is the provider
	// the realm made, which it flushes at shutdown.
	tracer     trace.Tracer
	ownTracing *sdktrace.TracerProvider
	// edge is the HTTP plumbing every API handler goes through.
	edge *edge.Edge
	// docs are the API documents the realm serves.
	docs *apidoc.Docs
	// decisions decides and audits for every part (realm/internal/decide);
	// access serves what a principal may do in a scene. The service is
	// bound once the audit log is open, the API once the live edge is.
	decisions *decide.Service
	access    *decide.API

	// The APIs whose routes are registered before the node starts; each
	// is bound to its started service before the node reports ready.
	auditAPI *auditapi.API
	// peerBackground is the exchange of background statistics with
	// other realms, made once the XR edge runs.
	peerBackground *peerbackground.Service
	marketAPI      *market.API
	scenesAPI      *scenesapi.API
	twinAPI        *twins.API
	identity       *identity.API // passkeys, sessions and roles (wire_identity.go)
	delegations    *delegations.API
	mcp            *mcpapi.API
	// approvals serves the owner's queue of agents' actions
	// (wire_approvals.go).
	approvals     *approvals.API
	approvalQueue *approval.Queue

	// node is the node's foundation (data dir, NATS, store, keys, audit,
	// registry); the slots below it are its parts, as the others read them.
	node        *node.Node
	embedded    *natsembed.Embedded
	nc          *nats.Conn
	clusterAuth *clustermsg.Auth // signs and checks the core NATS messages nodes act on
	store       *store.Store
	keys        *node.Keys
	audit       *audit.Log
	witness     *audit.Witness
	view        *audit.View
	nodes       *node.Registry

	// Set during start-up, read by handlers only once ready.
	catalog  *scenes.Catalog
	avatars  *avatar.Service
	sessions *session.Manager
	trust    *sessiontrust.Hub
	stepups  *identity.StepUps
	live     *live.Service
	twins    *command.Service
	market   *market.Service // the marketplace; see wire_market.go
	xr       *xr.Service
	revoker  *revocation.Broadcaster // revocations.go
	// agents authenticates agents and decides their actions, honouring
	// the root delegations of the keys delegations.Roots keeps.
	agents *agents.Guard

	// bgCancel stops the node's background loops at shutdown.
	bgCancel context.CancelFunc
	bgDone   sync.WaitGroup

	serveOnce sync.Once
}

// New validates cfg and prepares a realm; it starts nothing.
func New(cfg Config) (*Realm, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Realm{cfg: cfg, log: cfg.Logger, readyCh: make(chan struct{}), monitor: ops.New(cfg.Node)}
	r.timings = timings.New(r.monitor.Registry())
	tp := cfg.TracerProvider
	if tp == nil && cfg.OTelEndpoint != "" {
		own, err := tracing.Provider(context.Background(), cfg.OTelEndpoint, "zerorealm", cfg.Node)
		if err != nil {
			return nil, fmt.Errorf("realm: %w", err)
		}
		r.ownTracing, tp = own, own
	}
	if tp != nil {
		r.tracer = tracing.Tracer(tp)
	}
	r.edge = edge.New(edge.Config{
		Tracer:         r.tracer,
		Origins:        r.origins,
		RequestTimeout: cfg.RequestTimeout,
		ResourcePrefix: cfg.Prefix,
		TrustedProxies: cfg.TrustedProxies,
	}, r.log, r.monitor.Started, r.monitor.Registry())
	r.tampers = node.NewTampers(r.monitor.Registry())
	r.docs = apidoc.New(apidoc.Facts{
		LiveErrorCodes:    live.RefusalCodes(),
		AvatarPageDefault: identity.DefaultAvatarPage,
		AvatarPageMax:     identity.MaxAvatarPage,
	})
	r.auditAPI, r.marketAPI, r.scenesAPI = auditapi.New(r.edge), market.NewAPI(r.edge), scenesapi.New(r.edge)
	r.delegations, r.mcp = delegations.New(r.edge), mcpapi.New(r.edge)
	r.approvals = approvals.New(r.edge)
	r.decisions = decide.New()
	r.access = decide.NewAPI(r.edge, r.decisions)
	r.twinAPI = r.newTwinAPI()
	var err error
	r.identity, err = identity.New(identity.Config{Edge: r.edge, AdminRole: cfg.AdminRole, Limits: identity.Limits{
		CeremonyRate: cfg.CeremonyRate, CeremonyBurst: cfg.CeremonyBurst,
		MaxPendingCeremonies: cfg.MaxPendingCeremonies, MaxSessionsPerAvatar: cfg.MaxSessionsPerAvatar,
	}, Now: cfg.Clock.Now})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Listen binds the HTTP address so that URL is known before Serve starts
// NATS, and so /healthz answers 503 while the rest starts.
func (r *Realm) Listen() error {
	if r.listener != nil {
		return nil
	}
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("realm: listen on %s: %w", r.cfg.Listen, err)
	}
	// The kernel stamps when each XR frame message reached the machine,
	// so the streams' clock checks never blame a client for the node's
	// own late reads (internal/netstamp).
	// A live socket's writer sends the messages it has queued in one
	// write (internal/cork).
	r.listener = cork.Listener(netstamp.Listener(ln))
	return nil
}

// URL is the base URL the realm serves, valid after Listen. A wildcard host
// is shown as localhost, which is what a person opens in a browser.
func (r *Realm) URL() string {
	if r.listener == nil {
		return ""
	}
	host, port, _ := net.SplitHostPort(r.listener.Addr().String())
	if cfgHost, _, _ := net.SplitHostPort(r.cfg.Listen); cfgHost == "localhost" || host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Ready is closed once NATS, the streams and the scenes are ready.
func (r *Realm) Ready() <-chan struct{} { return r.readyCh }

// Node is this node's name, known once ready.
func (r *Realm) Node() string { return r.cfg.Node }

// Registry is the realm's Prometheus registry.
func (r *Realm) Registry() *prometheus.Registry { return r.monitor.Registry() }

// Audit is the node's audit log, available once ready.
func (r *Realm) Audit() *audit.Log { return r.audit }

// Serve runs the realm until ctx ends, then shuts down in reverse order: the
// HTTP edge drains, the audit log flushes, and the embedded NATS server (if
// any) stops last. A failure to start is returned at once.
func (r *Realm) Serve(ctx context.Context) error {
	first := false
	r.serveOnce.Do(func() { first = true })
	if !first {
		return errors.New("realm: Serve called twice")
	}
	if err := r.Listen(); err != nil {
		return err
	}
	r.http = &http.Server{
		Handler:           r.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	httpErr := make(chan error, 1)
	go func() { httpErr <- r.http.Serve(r.listener) }()

	startErr := r.start(ctx)
	if startErr == nil {
		r.monitor.Ready()
		close(r.readyCh)
		r.log.Info("realm ready", "url", r.URL(), "nats", r.node.NATSMode(r.cfg.NATS), "scenes", len(r.catalog.Scenes()))
		select {
		case <-ctx.Done():
		case err := <-httpErr:
			startErr = fmt.Errorf("realm: http server: %w", err)
		}
	}
	if startErr != nil {
		r.monitor.NotReady("failed to start: " + startErr.Error())
	}
	r.shutdown()
	return startErr
}

// start brings up everything behind the HTTP edge, in dependency order:
// the node's foundation, scenes and twins, then the parts, each after
// what it reads, then the background loops.
func (r *Realm) start(ctx context.Context) (err error) {
	if r.node, err = node.Open(r.cfg.DataDir, r.cfg.Node, r.log); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.cfg.Node, r.log = r.node.Name, r.node.Log
	r.monitor.SetNode(r.cfg.Node)
	r.edge.SetLogger(r.log)

	// Scenes first: a bad scene must stop start-up before anything is written.
	if r.catalog, err = loadScenes(r.cfg.ScenesDir); err != nil {
		return fmt.Errorf("realm: scenes: %w", err)
	}
	r.timePolicies()
	r.scenesAPI.Bind(r.catalog)
	// The twins' gateways, which the embedded NATS server admits.
	r.twins, err = command.Prepare(command.Config{Catalog: r.catalog, DataDir: r.cfg.DataDir, Simulate: len(r.cfg.NATS) == 0, Logger: r.log})
	if err != nil {
		return err
	}
	err = r.node.Start(ctx, node.Config{
		NATS: r.cfg.NATS, NATSAuth: r.cfg.natsAuth(), ClientListen: r.twins.Gateways().ClientListen(r.cfg.NATSListen), Gateways: r.twins.Gateways().NATSUsers(),
		MinFreeDisk: r.cfg.MinFreeDisk, Prefix: r.cfg.Prefix, RecordKeyFile: r.cfg.RecordKeyFile,
		Keys: node.KeyConfig{Passphrase: r.cfg.Assets.KeyPassphrase, ScryptN: r.cfg.Assets.KeyScryptN},
		RPID: r.cfg.RPID, URL: r.URL(), Heartbeat: r.cfg.NodeHeartbeat, Tampers: r.tampers, Clock: r.cfg.Clock,
		Status: r.monitor.NotReady, WriteGate: r.monitor.WriteGate, Observe: r.monitor.Decided,
	})
	n := r.node
	r.embedded, r.nc, r.clusterAuth, r.store, r.keys = n.Embedded, n.Conn, n.Cluster, n.Store, n.Keys
	r.audit, r.witness, r.view, r.nodes = n.Audit, n.Witness, n.View, n.Registry
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if err := r.decisions.Bind(decide.Deps{Log: r.log, Audit: r.audit}); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	// The tamper reports made before, then as they come.
	r.tampers.Audit(r.decisions.RecordQueued)
	r.auditAPI.Bind(auditapi.Deps{
		Log: r.log, Node: r.cfg.Node, AnchorsDir: filepath.Join(r.cfg.DataDir, node.AuditDir), AuditRoles: r.cfg.AuditRoles,
		Store: r.store, Audit: r.audit, Witness: r.witness, View: r.view, AuditDeny: r.decisions.DenyQueued,
		DelegatedTo: r.delegations.DelegatedTo,
	})

	boot := &identity.Bootstrap{Disabled: r.cfg.DisableBootstrapAdmin, Roles: r.cfg.BootstrapAdminRoles,
		DataDir: r.cfg.DataDir, Node: r.cfg.Node, Log: r.log, AuditNoWait: r.decisions.RecordQueued}
	r.avatars, err = avatar.New(ctx, r.store, boot.Configure(avatar.Config{
		RPID: r.cfg.RPID, Origins: r.origins(), AdminRole: r.cfg.AdminRole, CeremonyTTL: identity.CeremonyTTL, Logger: r.log, Now: r.cfg.Clock.Now,
	}))
	if err != nil {
		return fmt.Errorf("realm: avatars: %w", err)
	}
	boot.Note(ctx, r.avatars)
	r.sessions, err = session.New(ctx, r.store, session.Config{
		IdleTimeout: r.cfg.SessionIdle,
		Lifetime:    r.cfg.SessionLifetime,
		// Record activity often enough that the idle timeout stays accurate
		// to a quarter of itself, and at most once a minute.
		TouchEvery: edge.SessionTouchEvery(r.cfg.SessionIdle),
		Logger:     r.log, Now: r.cfg.Clock.Now,
	})
	if err != nil {
		return fmt.Errorf("realm: sessions: %w", err)
	}
	r.trust, err = sessiontrust.Open(ctx, sessiontrust.Deps{
		Store: r.store, SessionLifetime: r.cfg.SessionLifetime, Audit: r.audit, Log: r.log, Clock: r.cfg.Clock,
		// The live and XR edges are made below.
		OnChange: func(sessionID string, a trust.Assessment) {
			if r.live != nil {
				r.live.PushTrust(sessionID, a)
			}
		},
		OnSuspended: r.delegations.SuspendOwnersAgents,
		OnPasskey: func(sessionID string, userVerified bool) {
			if r.xr != nil {
				r.xr.AfterPasskey(sessionID, userVerified)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("realm: trust: %w", err)
	}
	r.edge.Bind(r.sessions, r.avatars, edge.AuthHooks{
		RolledBack: func(sessionID string) {
			r.tampers.Report(store.TamperEvent{Bucket: "sessions", Key: sessionID, Reason: session.ReasonRolledBack})
		},
		Seen: r.trust.ObserveAddress,
	})
	if err := r.startIdentity(ctx); err != nil {
		return err
	}
	if r.market, err = r.openMarket(ctx); err != nil {
		return err
	}
	r.marketAPI.Bind(r.market)
	if err := r.startLive(ctx); err != nil {
		return err
	}
	if err := r.bindAccess(); err != nil {
		return err
	}

	bg, cancel := context.WithCancel(context.Background())
	r.bgCancel = cancel
	// Before the trust hub runs: it stops a suspended avatar's agents.
	if err := r.startAgents(ctx, bg); err != nil {
		return err
	}
	revocations, err := r.sessions.Revocations(bg)
	if err != nil {
		return fmt.Errorf("realm: revocation feed: %w", err)
	}
	// Request paths read avatars through this node's cache, which this
	// feed keeps current (see avatar.Service.CacheReads).
	if err := r.avatars.CacheReads(bg); err != nil {
		return fmt.Errorf("realm: avatar change feed: %w", err)
	}
	// Probed once before the node reports ready, so /readyz is right from
	// the first request.
	probes := ops.Probes{Store: r.store, NATS: r.nc, Scenes: func() int { return len(r.catalog.Scenes()) }, Audit: r.audit, Witness: r.witness, Log: r.log}
	if r.embedded != nil {
		probes.Disk = r.embedded
	}
	r.monitor.Bind(ctx, probes)
	r.bgDone.Go(func() { r.monitor.Run(bg) })
	r.bgDone.Go(func() { r.live.FollowRevocations(revocations, r.twinAPI.CloseSession, r.trust.Forget) })
	r.bgDone.Go(func() { r.trust.Run(bg) })
	if err := r.startTwins(ctx, bg); err != nil {
		return err
	}
	if err := r.runLive(ctx, bg); err != nil {
		return err
	}
	if err := r.startBackgroundExchange(ctx, bg); err != nil {
		return err
	}
	if err := r.startRevocationBroadcast(bg); err != nil {
		return err
	}
	scenesapi.RecordServed(ctx, r.catalog, r.cfg.Node, r.audit.Record, r.log)
	return nil
}

// shutdown stops everything Serve started, in reverse order, within
// ShutdownTimeout for the HTTP drain plus the store's flush.
func (r *Realm) shutdown() {
	r.monitor.NotReady("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := r.http.Shutdown(ctx); err != nil {
		r.log.Warn("http drain incomplete, closing connections", "err", err)
		_ = r.http.Close()
	}
	// Every peer connection and the shared UDP socket, so no frame
	// reaches a stream after the stores behind it are gone.
	if r.xr != nil && r.live != nil {
		r.live.StopMotion()
		r.xr.Close()
	}
	// The simulated gateways and the feed, and the consoles.
	r.twins.Close()
	r.twinAPI.Close()
	if r.bgCancel != nil {
		r.bgCancel()
		r.bgDone.Wait()
	}
	if r.agents != nil {
		r.agents.Close() // stops following the revocations
	}
	r.node.StopRegistry(ctx)
	if r.market != nil {
		r.market.Close()
	}
	r.node.Close(ctx)
	if r.ownTracing != nil {
		// The spans of the last requests, while the collector waits.
		flushCtx, flushCancel := context.WithTimeout(context.Background(), time.Second)
		defer flushCancel()
		if err := r.ownTracing.Shutdown(flushCtx); err != nil {
			r.log.Warn("trace export on shutdown", "err", err)
		}
	}
	r.log.Info("realm stopped")
}

// origins are the web origins the realm accepts: the configured ones, or
// its own URL.
func (r *Realm) origins() []string {
	if len(r.cfg.Origins) > 0 {
		return r.cfg.Origins
	}
	if u := r.URL(); u != "" {
		return []string{u}
	}
	return nil
}

// loadScenes loads the scenes of dir, or those shipped in the binary.
func loadScenes(dir string) (*scenes.Catalog, error) {
	if dir == "" {
		return scenes.LoadBuiltin()
	}
	return scenes.LoadDir(dir)
}
