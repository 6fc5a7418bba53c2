package realm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/dirlock"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/tracing"
	"github.com/zerorealm/zerorealm/realm/internal/apidoc"
	"github.com/zerorealm/zerorealm/realm/internal/auditapi"
	"github.com/zerorealm/zerorealm/realm/internal/delegations"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
	"github.com/zerorealm/zerorealm/realm/internal/live"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/internal/market"
	"github.com/zerorealm/zerorealm/realm/internal/mcpapi"
	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/realm/internal/ops"
	"github.com/zerorealm/zerorealm/realm/internal/scenesapi"
	"github.com/zerorealm/zerorealm/realm/internal/sessiontrust"
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
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
	// clusterAuth signs and checks the core NATS messages nodes act on.
	clusterAuth *clustermsg.Auth

	listener net.Listener
	http     *http.Server

	readyCh chan struct{}
	// tracer records spans when tracing is on (Config.OTelEndpoint or
	// Config.TracerProvider), nil otherwise; ownTracing is the provider
	// the realm made, which it flushes at shutdown.
	tracer     trace.Tracer
	ownTracing *sdktrace.TracerProvider
	// edge is the HTTP plumbing every API handler goes through.
	edge *edge.Edge
	// docs are the API documents the realm serves.
	docs *apidoc.Docs
	// auditAPI serves the audit log; bound once the log is open.
	auditAPI *auditapi.API
	// marketAPI serves the marketplace's routes; bound to market at start.
	marketAPI *market.API
	// scenesAPI serves the version and the scenes; bound at start.
	scenesAPI *scenesapi.API

	// Set during start-up, read by handlers only once ready is true.
	embedded *natsembed.Embedded
	dataLock *dirlock.Lock // held from start to the end of shutdown
	nc       *nats.Conn
	store    *store.Store
	catalog  *scenes.Catalog
	audit    *audit.Log
	witness  *audit.Witness
	view     *audit.View
	nodes    *node.Registry
	avatars  *avatar.Service
	sessions *session.Manager
	trust    *sessiontrust.Hub
	stepups  *stepUpProofs
	live     *live.Service
	twins    *command.Service
	twinAPI  *twins.API
	market   *market.Service // the marketplace; see wire_market.go
	xr       *xr.Service
	presence presenceView            // where the live edge sees avatars
	revoker  *revocation.Broadcaster // revocations.go

	// keys is the node's key ring and its active and previous keys.
	keys *node.Keys

	// agents authenticates agents and decides their actions, honouring
	// root delegations signed by agentRoots (wire_agents.go).
	agents      *agents.Guard
	agentRoots  *agents.RootSet
	delegations *delegations.API
	mcp         *mcpapi.API

	// identity serves passkeys, sessions and roles (wire_identity.go).
	identity *identity.API

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
	r.auditAPI = auditapi.New(r.edge)
	r.delegations = delegations.New(r.edge)
	r.mcp = mcpapi.New(r.edge)
	r.docs = apidoc.New(apidoc.Facts{
		LiveErrorCodes:    live.RefusalCodes(),
		AvatarPageDefault: identity.DefaultAvatarPage,
		AvatarPageMax:     identity.MaxAvatarPage,
	})
	r.tampers = node.NewTampers(r.monitor.Registry())
	r.scenesAPI = scenesapi.New(r.edge)
	r.marketAPI = market.NewAPI(r.edge)
	r.twinAPI = r.newTwinAPI()
	var err error
	if r.identity, err = r.newIdentity(); err != nil {
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
	r.listener = ln
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
		r.log.Info("realm ready", "url", r.URL(), "nats", r.natsMode(), "scenes", len(r.catalog.Scenes()))
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

func (r *Realm) natsMode() string {
	if len(r.cfg.NATS) > 0 {
		return "cluster " + strings.Join(r.cfg.NATS, ",")
	}
	if r.embedded != nil && r.embedded.ClientURL() != "" {
		return "embedded, authenticated clients at " + r.embedded.ClientURL() + " (for enrolled gateways)"
	}
	return "embedded, in-process only (no gateway enrolled, so no client port)"
}

// start brings up everything behind the HTTP edge, in dependency order.
func (r *Realm) start(ctx context.Context) error {
	if err := os.MkdirAll(r.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("realm: data dir: %w", err)
	}
	// Before anything reads or writes the data dir: two processes on one
	// JetStream file store corrupt it.
	lock, err := dirlock.Acquire(r.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("realm: data dir: %w", err)
	}
	r.dataLock = lock
	if r.cfg.Node == "" {
		id, err := node.LoadOrCreateID(r.cfg.DataDir)
		if err != nil {
			return fmt.Errorf("realm: %w", err)
		}
		r.cfg.Node = id
	}
	r.log = r.log.With("node", r.cfg.Node)
	r.monitor.SetNode(r.cfg.Node)
	r.edge.SetLogger(r.log)
	r.tampers.Begin(r.cfg.Node, r.log)

	// Scenes first: a bad scene must stop start-up before anything is written.
	if r.catalog, err = loadScenes(r.cfg.ScenesDir); err != nil {
		return fmt.Errorf("realm: scenes: %w", err)
	}
	r.scenesAPI.Bind(r.catalog)
	if err := r.prepareTwins(); err != nil {
		return err
	}

	if len(r.cfg.NATS) == 0 {
		r.embedded, err = natsembed.Start(ctx, natsembed.Config{
			DataDir:      r.cfg.DataDir,
			ClientListen: r.natsClientListen(),
			Prefix:       r.cfg.Prefix,
			Gateways:     r.twins.NATSUsers(),
			ServerName:   r.cfg.Node,
			Logger:       r.log,
			MinFreeDisk:  r.cfg.MinFreeDisk,
		})
		if err != nil {
			return fmt.Errorf("realm: embedded NATS: %w", err)
		}
		r.nc = r.embedded.Conn()
	} else {
		dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r.nc, err = natsembed.Dial(dialCtx, r.cfg.NATS, "zerorealm-"+r.cfg.Node, r.cfg.natsAuth(), r.log)
		cancel()
		if err != nil {
			return fmt.Errorf("realm: %w", err)
		}
	}

	recordKey, recordKeyFile, err := node.LoadRecordKey(r.cfg.DataDir, r.cfg.RecordKeyFile)
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	if r.clusterAuth, err = clustermsg.New(recordKey); err != nil {
		return err
	}
	// A cluster that has just elected its meta leader, or whose JetStream
	// is still starting, answers "JetStream not available" for a moment:
	// wait for it (logging why) rather than exit.
	r.monitor.NotReady("waiting for JetStream")
	// The embedded server's disk guard refuses writes once the node
	// serves; with NATS, whose servers own their disks, nothing does.
	var writeGate func() error
	if r.embedded != nil {
		writeGate = r.monitor.WriteGate(r.embedded.WriteRefusal)
	}
	r.store, err = store.New(ctx, r.nc, store.Config{Prefix: r.cfg.Prefix, Logger: r.log, RecordKey: recordKey, OnTamper: r.tampers.Report, WaitForJetStream: true, WriteGate: writeGate})
	if err != nil {
		return fmt.Errorf("realm: store: %w", err)
	}
	r.monitor.NotReady("starting")
	if err := node.CheckRecordKey(ctx, r.store, recordKey, recordKeyFile); err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.keys, err = node.OpenKeys(node.KeyConfig{DataDir: r.cfg.DataDir, Passphrase: r.cfg.Assets.KeyPassphrase, ScryptN: r.cfg.Assets.KeyScryptN, Log: r.log})
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.audit, r.witness, err = node.OpenAudit(ctx, r.store, node.AuditConfig{
		Node: r.cfg.Node, RPID: r.cfg.RPID, DataDir: r.cfg.DataDir, Keys: r.keys, Log: r.log, Observe: r.monitor.Decided,
	})
	if err != nil {
		return fmt.Errorf("realm: %w", err)
	}
	r.tampers.Audit(r.auditAsync)
	r.view, err = audit.NewView(ctx, r.store, 0)
	if err != nil {
		return fmt.Errorf("realm: audit view: %w", err)
	}
	r.auditAPI.Bind(auditapi.Deps{
		Log: r.log, Node: r.cfg.Node, AnchorsDir: filepath.Join(r.cfg.DataDir, node.AuditDir), AuditRoles: r.cfg.AuditRoles,
		Store: r.store, Audit: r.audit, Witness: r.witness, View: r.view, AuditDeny: r.auditDeny,
	})
	r.nodes, err = node.StartRegistry(ctx, r.store, node.Info{
		Node: r.cfg.Node, URL: r.URL(), Started: time.Now().UTC(),
	}, r.cfg.NodeHeartbeat, r.log)
	if err != nil {
		return fmt.Errorf("realm: node registry: %w", err)
	}
	r.avatars, err = avatar.New(ctx, r.store, r.avatarConfig())
	if err != nil {
		return fmt.Errorf("realm: avatars: %w", err)
	}
	r.bootstrap().Note(ctx, r.avatars)
	r.sessions, err = session.New(ctx, r.store, session.Config{
		IdleTimeout: r.cfg.SessionIdle,
		Lifetime:    r.cfg.SessionLifetime,
		// Record activity often enough that the idle timeout stays accurate
		// to a quarter of itself, and at most once a minute.
		TouchEvery: edge.SessionTouchEvery(r.cfg.SessionIdle),
		Logger:     r.log,
	})
	if err != nil {
		return fmt.Errorf("realm: sessions: %w", err)
	}
	r.trust, err = sessiontrust.Open(ctx, sessiontrust.Deps{
		Store: r.store, SessionLifetime: r.cfg.SessionLifetime, Audit: r.audit, Log: r.log,
		OnChange: r.pushTrust, OnSuspended: r.suspendOwnersAgents, OnPasskey: r.xrAfterPasskey,
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

	bg, cancel := context.WithCancel(context.Background())
	r.bgCancel = cancel
	// Before the trust hub runs: it stops a suspended avatar's agents.
	if err := r.startAgents(ctx, bg); err != nil {
		cancel()
		return err
	}
	revocations, err := r.sessions.Revocations(bg)
	if err != nil {
		cancel()
		return fmt.Errorf("realm: revocation feed: %w", err)
	}
	// Request paths read avatars through this node's cache, which this
	// feed keeps current (see avatar.Service.CacheReads).
	if err := r.avatars.CacheReads(bg); err != nil {
		cancel()
		return fmt.Errorf("realm: avatar change feed: %w", err)
	}
	// Probed once before the node reports ready, so /readyz is right from
	// the first request.
	probes := ops.Probes{Store: r.store, NATS: r.nc, Scenes: func() int { return len(r.catalog.Scenes()) }, Audit: r.audit, Witness: r.witness, Log: r.log}
	if r.embedded != nil {
		probes.Disk = r.embedded
	}
	r.monitor.Bind(ctx, probes)
	r.bgDone.Add(3)
	go func() { defer r.bgDone.Done(); r.monitor.Run(bg) }()
	go func() { defer r.bgDone.Done(); r.followRevocations(bg, revocations) }()
	go func() { defer r.bgDone.Done(); r.trust.Run(bg) }()
	if err := r.startTwins(ctx, bg); err != nil {
		return err
	}
	if err := r.runLive(ctx, bg); err != nil {
		return err
	}
	if err := r.startRevocationBroadcast(bg); err != nil {
		return err
	}

	r.recordSceneLoads(ctx)
	return nil
}

// recordSceneLoads audits which scenes and policy sets this node serves, so
// the audit trail shows the rules in force at any time.
func (r *Realm) recordSceneLoads(ctx context.Context) {
	for _, sc := range r.catalog.Scenes() {
		var ids []string
		if sc.Policies != nil {
			ids = sc.Policies.IDs()
		}
		err := r.audit.Record(ctx, audit.Event{
			Actor:    "realm:" + r.cfg.Node,
			Action:   "ServeScene",
			Resource: fmt.Sprintf("Scene::%q", sc.ID),
			Outcome:  audit.Allow,
			Reasons:  []string{"scene definition and policies validated at start-up"},
			Policies: ids,
			Signals:  map[string]any{"policy_files": sc.PolicyFiles},
		})
		if err != nil {
			r.log.Error("audit scene load", "scene", sc.ID, "err", err)
		}
	}
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
	r.stopXR()
	r.stopTwins()
	if r.bgCancel != nil {
		r.bgCancel()
		r.bgDone.Wait()
	}
	r.stopAgents()
	r.nodes.Stop(ctx)
	if r.market != nil {
		r.market.Close()
	}
	if r.view != nil {
		r.view.Close()
	}
	if r.witness != nil {
		r.witness.Close()
	}
	if r.audit != nil {
		if err := r.audit.Close(ctx); err != nil {
			r.log.Error("audit log close", "err", err)
		}
	}
	flushCtx, flushCancel := context.WithTimeout(context.Background(), time.Second)
	defer flushCancel()
	if r.embedded != nil {
		r.embedded.Shutdown(flushCtx)
	} else if r.nc != nil {
		if err := r.nc.FlushWithContext(flushCtx); err != nil {
			r.log.Warn("nats flush on shutdown", "err", err)
		}
		r.nc.Close()
	}
	if r.ownTracing != nil {
		// The spans of the last requests, while the collector waits.
		if err := r.ownTracing.Shutdown(flushCtx); err != nil {
			r.log.Warn("trace export on shutdown", "err", err)
		}
	}
	// Last: the store is flushed and closed, so another process may open it.
	if err := r.dataLock.Release(); err != nil {
		r.log.Warn("data dir unlock", "err", err)
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
