package realm

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/assets"
	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/avatar/session/revocation"
	"github.com/zerorealm/zerorealm/internal/audit"
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
	"github.com/zerorealm/zerorealm/realm/internal/twins"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/twin"
)

// Realm is one realm node. Create it with New, bind it with Listen, run it
// with Serve.
type Realm struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	tampers *tampers // records that did not verify; see records.go
	// clusterAuth signs and checks the core NATS messages nodes act on.
	clusterAuth *clusterAuth

	listener net.Listener
	http     *http.Server

	ready    atomic.Bool
	readyCh  chan struct{}
	notReady atomic.Pointer[string] // why the realm is not ready, for /healthz
	// readiness is the background prober's last finding (health.go).
	readiness atomic.Pointer[readiness]
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
	// servedNode is the node name that code serving HTTP reads: it runs
	// while start still sets r.cfg.Node (a load balancer polls /readyz
	// during start-up), so it reads it from here.
	servedNode atomic.Pointer[string]

	// Set during start-up, read by handlers only once ready is true.
	embedded *natsembed.Embedded
	dataLock *dirlock.Lock // held from start to the end of shutdown
	nc       *nats.Conn
	store    *store.Store
	catalog  *scenes.Catalog
	audit    *audit.Log
	witness  *audit.Witness
	view     *audit.View
	nodes    *nodeRegistry
	avatars  *avatar.Service
	sessions *session.Manager
	trust    *trustHub
	stepups  *stepUpProofs
	live     *live.Service
	twins    *command.Service
	twinAPI  *twins.API
	market   *market.Service // the marketplace; see wire_market.go
	xr       *xr.Service
	presence presenceView            // where the live edge sees avatars
	revoker  *revocation.Broadcaster // revocations.go

	// The node's key ring and its active and previous secp256k1 keys
	// (see keyring.go).
	ring     *assets.KeyRing
	ringKey  *ecdsa.PrivateKey
	ringPrev *ecdsa.PrivateKey
	ringPass string
	// legacyGrantKey is the grant key of an earlier version, imported
	// into the ring as a retired key at this start: it announces the
	// ring's active key to the gateways that pinned it.
	legacyGrantKey *twin.Signer

	// agents authenticates agents and decides their actions, honouring
	// root delegations signed by agentRoots (wire_agents.go).
	agents      *agents.Guard
	agentsBg    context.Context // ends with the node's background loops (wire_agents.go)
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
	r := &Realm{cfg: cfg, log: cfg.Logger, readyCh: make(chan struct{})}
	r.setNotReady("starting")
	r.servedNode.Store(&cfg.Node)
	r.metrics = newMetrics(r)
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
	}, r.log, r.ready.Load, r.metrics.registry)
	r.auditAPI = auditapi.New(r.edge)
	r.delegations = delegations.New(r.edge)
	r.mcp = mcpapi.New(r.edge)
	r.docs = apidoc.New(apidoc.Facts{
		LiveErrorCodes:    live.RefusalCodes(),
		AvatarPageDefault: identity.DefaultAvatarPage,
		AvatarPageMax:     identity.MaxAvatarPage,
	})
	r.tampers = newTampers(r.metrics.registry)
	r.marketAPI = market.NewAPI(r.edge)
	r.twinAPI = r.newTwinAPI()
	var err error
	if r.identity, err = r.newIdentity(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Realm) setNotReady(reason string) { r.notReady.Store(&reason) }

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
func (r *Realm) Registry() *prometheus.Registry { return r.metrics.registry }

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
		r.ready.Store(true)
		close(r.readyCh)
		r.log.Info("realm ready", "url", r.URL(), "nats", r.natsMode(), "scenes", len(r.catalog.Scenes()))
		select {
		case <-ctx.Done():
		case err := <-httpErr:
			startErr = fmt.Errorf("realm: http server: %w", err)
		}
	}
	if startErr != nil {
		r.setNotReady("failed to start: " + startErr.Error())
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
		node, err := loadOrCreateNodeID(r.cfg.DataDir)
		if err != nil {
			return err
		}
		r.cfg.Node = node
	}
	r.log = r.log.With("node", r.cfg.Node)
	node := r.cfg.Node
	r.servedNode.Store(&node)
	r.edge.SetLogger(r.log)

	// Scenes first: a bad scene must stop start-up before anything is written.
	if r.cfg.ScenesDir == "" {
		r.catalog, err = scenes.LoadBuiltin()
	} else {
		r.catalog, err = scenes.LoadDir(r.cfg.ScenesDir)
	}
	if err != nil {
		return fmt.Errorf("realm: scenes: %w", err)
	}
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

	recordKey, recordKeyFile, err := r.recordKey()
	if err != nil {
		return err
	}
	if r.clusterAuth, err = newClusterAuth(recordKey); err != nil {
		return err
	}
	// A cluster that has just elected its meta leader, or whose JetStream
	// is still starting, answers "JetStream not available" for a moment:
	// wait for it (logging why) rather than exit.
	r.setNotReady("waiting for JetStream")
	r.store, err = store.New(ctx, r.nc, store.Config{Prefix: r.cfg.Prefix, Logger: r.log, RecordKey: recordKey, OnTamper: r.reportTamper, WaitForJetStream: true, WriteGate: r.diskGate()})
	if err != nil {
		return fmt.Errorf("realm: store: %w", err)
	}
	r.setNotReady("starting")
	if err := r.checkRecordKey(ctx, recordKey, recordKeyFile); err != nil {
		return err
	}
	if err := r.openAudit(ctx); err != nil {
		return err
	}
	r.auditTampers()
	r.view, err = audit.NewView(ctx, r.store, 0)
	if err != nil {
		return fmt.Errorf("realm: audit view: %w", err)
	}
	r.auditAPI.Bind(auditapi.Deps{
		Log: r.log, Node: r.cfg.Node, AnchorsDir: filepath.Join(r.cfg.DataDir, AuditDir), AuditRoles: r.cfg.AuditRoles,
		Store: r.store, Audit: r.audit, Witness: r.witness, View: r.view, AuditDeny: r.auditDeny,
	})
	r.nodes, err = startNodeRegistry(ctx, r.store, nodeInfo{
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
	r.trust, err = newTrustHub(ctx, r.store, r.cfg.SessionLifetime, r.audit, r.log)
	if err != nil {
		return fmt.Errorf("realm: trust: %w", err)
	}
	r.edge.Bind(r.sessions, r.avatars, edge.AuthHooks{
		RolledBack: func(sessionID string) {
			r.reportTamper(store.TamperEvent{Bucket: "sessions", Key: sessionID, Reason: session.ReasonRolledBack})
		},
		Seen: r.trust.observeAddress,
	})
	r.trust.onChange = r.pushTrust
	r.trust.onSuspended = r.suspendOwnersAgents
	r.trust.onPasskey = r.xrAfterPasskey
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
	first := r.probeReadiness(ctx)
	r.readiness.Store(&first)
	r.bgDone.Add(3)
	go func() { defer r.bgDone.Done(); r.runReadiness(bg) }()
	go func() { defer r.bgDone.Done(); r.followRevocations(bg, revocations) }()
	go func() { defer r.bgDone.Done(); r.trust.run(bg) }()
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
	r.setNotReady("shutting down")
	r.ready.Store(false)
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
	if r.nodes != nil {
		r.nodes.stop(ctx)
	}
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

// loadOrCreateNodeID gives a node a stable name across restarts, so its
// audit chain continues where it left off.
func loadOrCreateNodeID(dataDir string) (string, error) {
	p := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !nodeNamePattern.MatchString(id) {
			return "", fmt.Errorf("realm: %s holds %q, not a node name: fix or delete the file", p, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("realm: read node id: %w", err)
	}
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	host, _ := os.Hostname()
	host = sanitizeNodeName(host)
	id := "node-" + hex.EncodeToString(raw[:])
	if host != "" {
		id = host + "-" + hex.EncodeToString(raw[:])
	}
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("realm: write node id: %w", err)
	}
	return id, nil
}

func sanitizeNodeName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteRune('-')
		}
		if b.Len() >= 48 {
			break
		}
	}
	return b.String()
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
