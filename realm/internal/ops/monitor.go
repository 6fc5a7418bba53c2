package ops

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/buildinfo"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Readiness is probed in the background, not per request: a load balancer
// polling /readyz from several places must not multiply the load on
// JetStream, and a probe of a stream without a leader waits for its
// timeout, which a health endpoint must not. Once a second, with a budget
// under a second, /readyz turns within two seconds of a change.
const (
	readyProbeEvery   = time.Second
	readyProbeTimeout = 750 * time.Millisecond
)

// A node at its busiest can miss a probe's budget now and then: its store
// calls wait behind its own load, and JetStream answers late for a moment
// while it works through the writes. Pulled out of a load balancer for
// that, the node's traffic lands on the others, which are as busy, and
// comes back a second later: a flap that makes everything worse. So a
// check a busy node can miss for a moment (JetStream answering, every
// stream having a leader) must fail readyFailAfter probes in a row before
// the node turns not ready, and a node that turned not ready must pass
// readyPassAfter in a row before it is ready again. What is never a
// moment's slowness turns it at once: its NATS connection down, or its
// disk full. The checks and their gauges show each probe as it was.
const (
	readyFailAfter = 3
	readyPassAfter = 2
)

// The readiness checks, in the order they run; also the label values of
// zerorealm_ready_check.
const (
	CheckNATS      = "nats"      // the NATS connection is up
	CheckJetStream = "jetstream" // JetStream answers account info
	CheckLeaders   = "leaders"   // every stream and bucket this node writes has a leader
	CheckDisk      = "disk"      // embedded store: free space under the data dir above MinFreeDisk, JetStream taking writes
)

// DefaultMinFreeDisk is the default free space the embedded store's disk
// must keep: room for JetStream to finish what it is writing and for an
// operator to react.
const DefaultMinFreeDisk = 64 << 20

var readyChecks = []string{CheckNATS, CheckJetStream, CheckLeaders, CheckDisk}

// readiness is what one probe found, or the verdict the probes so far
// make (settle).
type readiness struct {
	ready  bool
	reason string          // why not, for operators; never names a stream
	checks map[string]bool // check -> passed (a check not run after a failure is false)
	// diskFree is the free space under the data dir in bytes, -1 when not
	// measured (a node on an external cluster, or an unsupported system).
	diskFree int64
	// atOnce: the failure is not a moment's slowness (readyFailAfter).
	atOnce bool
	// A verdict that the last probes disagree with: streak is how many
	// in a row, and finding what the last one found ("" when it passed).
	streak  int
	finding string
}

// Store is what the probe asks of the store.
type Store interface {
	Check(ctx context.Context) store.Health
	Replicas() int
}

// Disk is the embedded NATS server's disk guard.
type Disk interface {
	Disk() natsembed.DiskState
}

// Probes are what the monitor reads once the node has started.
type Probes struct {
	Store Store
	NATS  *nats.Conn
	// Disk is the embedded server's disk guard; nil with an external
	// cluster, whose servers own their disks.
	Disk Disk
	// Scenes counts the scenes the node serves, for /healthz.
	Scenes  func() int
	Audit   *audit.Log
	Witness *audit.Witness
	Log     *slog.Logger
}

// Monitor is the node as operators see it. Make it with New before the
// HTTP server starts; it answers "not ready" with the reason set by
// NotReady until Bind and Ready.
type Monitor struct {
	registry *prometheus.Registry
	// decisions counts every decision put on record, by action and
	// outcome: sign-ins, step-ups, sign-outs, trust assessments, scene
	// joins and zones, transfers, twin commands and approvals, as the
	// audit log names them.
	decisions *prometheus.CounterVec
	// probeFailures counts the background probes that failed each check:
	// the verdict rides out a moment's slowness (settle), and this is
	// where an operator still sees it.
	probeFailures *prometheus.CounterVec
	mu            sync.Mutex
	actions       map[string]bool // the action label values in use

	started  atomic.Bool
	notReady atomic.Pointer[string] // why the node is not ready, for /healthz
	// node is the node name that code serving HTTP reads: it runs while
	// start-up still names the node (a load balancer polls /readyz
	// during start-up), so it reads it from here.
	node   atomic.Pointer[string]
	probes atomic.Pointer[Probes]
	// last is the background prober's last finding.
	last atomic.Pointer[readiness]
}

// maxActionLabels bounds the action label's values; the realm's actions
// are a fixed vocabulary well under it, so it only guards the metric
// against a future action name built from input.
const maxActionLabels = 64

// New makes the monitor of a node named node (empty while not known) with
// its own Prometheus registry: one per node rather than the global
// default, so two nodes in one process (tests) never collide.
func New(node string) *Monitor {
	m := &Monitor{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_decisions_total",
			Help: "Decisions put on record in the audit log, by action (SignIn, StepUp, SignOut, AssessTrust, JoinScene, EnterZone, TransferAsset, CommandActuator, ApproveCommand, ...) and outcome (allow, deny).",
		}, []string{"action", "outcome"}),
		probeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_ready_probe_failures_total",
			Help: "Background readiness probes that failed a check, by check (nats, jetstream, leaders, disk), whether or not they turned the node not ready: a busy node misses one now and then, and only three in a row of jetstream or leaders turn it.",
		}, []string{"check"}),
		actions: map[string]bool{},
	}
	for _, check := range readyChecks {
		m.probeFailures.WithLabelValues(check)
	}
	m.SetNode(node)
	m.NotReady("starting")
	m.register()
	return m
}

// Registry is the node's Prometheus registry.
func (m *Monitor) Registry() *prometheus.Registry { return m.registry }

// Decided counts one decision put on record (audit.Config.Observe).
func (m *Monitor) Decided(action string, outcome audit.Outcome) {
	m.mu.Lock()
	if !m.actions[action] {
		if len(m.actions) >= maxActionLabels {
			action = "other"
		} else {
			m.actions[action] = true
		}
	}
	m.mu.Unlock()
	m.decisions.WithLabelValues(action, string(outcome)).Inc()
}

// SetNode names the node its answers speak for.
func (m *Monitor) SetNode(node string) { m.node.Store(&node) }

// Started says whether the node has started and not begun to stop:
// handlers behind the edge serve only then.
func (m *Monitor) Started() bool { return m.started.Load() }

// Ready marks the node started; Bind must have run.
func (m *Monitor) Ready() { m.started.Store(true) }

// NotReady marks the node not started (starting, failed, stopping) and
// says why.
func (m *Monitor) NotReady(reason string) {
	m.notReady.Store(&reason)
	m.started.Store(false)
}

// WriteGate is the store's write gate of the embedded server's refusal:
// it guards what the node serves, once it serves. The few writes of
// start-up (the record key's check, the node's entry, the audit of the
// start) go ahead, so a node started on a nearly full disk comes up not
// ready, and turns ready when space is freed, rather than exit.
func (m *Monitor) WriteGate(refusal func() error) func() error {
	return func() error {
		if !m.started.Load() {
			return nil
		}
		return refusal()
	}
}

// Bind gives the monitor what it probes and probes once, so /readyz is
// right from the first request after Ready.
func (m *Monitor) Bind(ctx context.Context, p Probes) {
	m.probes.Store(&p)
	first := m.probe(ctx)
	m.last.Store(&first)
}

// Run probes once a second until ctx ends and logs each change. The
// probe is paced in real time whatever the realm's clock: it watches a
// network and disks, whose answers do not wait for a manual clock.
func (m *Monitor) Run(ctx context.Context) {
	clock.Every(ctx, clock.Real{}, readyProbeEvery, func(ctx context.Context) {
		m.record(ctx, m.probe(ctx))
	})
}

// probe runs the checks once.
func (m *Monitor) probe(ctx context.Context) readiness {
	p := m.probes.Load()
	ctx, cancel := context.WithTimeout(ctx, readyProbeTimeout)
	defer cancel()
	rd := readiness{checks: map[string]bool{}, diskFree: -1}
	h := p.Store.Check(ctx)
	rd.checks[CheckNATS] = h.Connected
	rd.checks[CheckJetStream] = h.JetStream
	rd.checks[CheckLeaders] = h.Leaders
	switch {
	case !h.Connected:
		rd.reason = "NATS connection " + p.NATS.Status().String()
		rd.atOnce = true
	case !h.JetStream:
		rd.reason = "JetStream does not answer"
	case !h.Leaders:
		rd.reason = "a stream or bucket this node writes has no leader (election or lost quorum)"
	}
	rd.checks[CheckDisk] = true
	if p.Disk != nil {
		// The embedded server's disk guard measures the space and sees
		// a JetStream broken by a failed write; the store refuses
		// writes on the same finding (the write gate).
		d := p.Disk.Disk()
		rd.diskFree = d.Free
		if why := d.Reason(); why != "" {
			rd.checks[CheckDisk] = false
			if rd.reason == "" {
				rd.reason = "the embedded store's disk is full: " + why
				rd.atOnce = true
			}
		}
	}
	rd.ready = rd.reason == ""
	if !rd.ready && h.Err != nil {
		// The internal detail (which stream) goes to the log only.
		p.Log.Debug("readiness probe failed", "reason", rd.reason, "err", h.Err)
	}
	return rd
}

func (m *Monitor) record(ctx context.Context, found readiness) {
	if ctx.Err() != nil {
		return // a probe cut short by the node stopping found nothing
	}
	for _, check := range readyChecks {
		if !found.checks[check] {
			m.probeFailures.WithLabelValues(check).Inc()
		}
	}
	prev := m.last.Load()
	rd := settle(prev, found)
	m.last.Store(&rd)
	log := m.probes.Load().Log
	if rd.ready && rd.streak == 1 {
		log.Info("readiness probe failed; the node stays ready unless the next probes fail too",
			"reason", rd.finding, "turns_after", readyFailAfter)
	}
	if prev == nil || prev.ready == rd.ready && prev.reason == rd.reason {
		return
	}
	if rd.ready {
		log.Info("node ready again: it can decide and write", "was", prev.reason)
	} else {
		log.Warn("node not ready: it cannot decide and write now", "reason", rd.reason)
	}
}

// settle is the verdict after a probe found found, when the verdict was
// prev (nil before the first): a finding that disagrees with the verdict
// turns it only once readyFailAfter (failing) or readyPassAfter (passing)
// probes in a row have found the same, or at once for a failure that is
// not a moment's slowness. Meanwhile the verdict holds, with the checks
// as the probe found them.
func settle(prev *readiness, found readiness) readiness {
	if prev == nil || found.ready == prev.ready {
		return found
	}
	streak := prev.streak + 1
	if found.ready && streak >= readyPassAfter || !found.ready && (found.atOnce || streak >= readyFailAfter) {
		return found
	}
	held := found
	held.ready, held.streak, held.finding = prev.ready, streak, found.reason
	if prev.ready {
		held.reason = ""
	} else {
		held.reason = prev.reason
		held.finding = "passing again"
	}
	return held
}

// current is the last probe's result, or the start-up state.
func (m *Monitor) current() readiness {
	if !m.started.Load() {
		return readiness{reason: *m.notReady.Load(), checks: map[string]bool{}, diskFree: -1}
	}
	if rd := m.last.Load(); rd != nil {
		return *rd
	}
	return readiness{reason: "first readiness probe pending", checks: map[string]bool{}, diskFree: -1}
}

// Routes registers the health endpoints and /metrics; they answer before
// the node has started.
func (m *Monitor) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", m.handleHealth)
	mux.HandleFunc("GET /livez", m.handleLivez)
	mux.HandleFunc("GET /readyz", m.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry}))
}

// handleLivez answers 200 while the process serves HTTP at all: a
// supervisor restarts a node only when this fails, never for an outage of
// NATS, which a restart does not cure.
func (m *Monitor) handleLivez(w http.ResponseWriter, _ *http.Request) {
	edge.WriteJSON(w, http.StatusOK, map[string]any{"status": "alive", "node": *m.node.Load()})
}

// handleReadyz answers 200 when this node can decide and write now, and
// 503 with the reason when it cannot (starting, stopping, or a failed
// check), so a load balancer sends traffic elsewhere.
func (m *Monitor) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	rd := m.current()
	body := map[string]any{"node": *m.node.Load(), "checks": rd.checks}
	if rd.streak > 0 {
		// The verdict holds against the last probes: say so, and what
		// they found.
		body["turning"] = map[string]any{"probes": rd.streak, "of": turnAfter(rd.ready), "found": rd.finding}
	}
	if !rd.ready {
		body["status"] = "not ready"
		body["reason"] = rd.reason
		w.Header().Set("Retry-After", "1")
		edge.WriteJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	edge.WriteJSON(w, http.StatusOK, body)
}

// turnAfter is how many probes in a row turn a verdict: failing ones a
// verdict of ready, passing ones a verdict of not ready.
func turnAfter(ready bool) int {
	if ready {
		return readyFailAfter
	}
	return readyPassAfter
}

// handleHealth is the first health endpoint, kept for what already polls
// it: the same verdict as /readyz, with the node's version, and its scenes
// and replica count once ready.
func (m *Monitor) handleHealth(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"node": *m.node.Load(), "version": buildinfo.Get().Version}
	rd := m.current()
	if !rd.ready {
		body["status"] = rd.reason
		body["reason"] = rd.reason
		w.Header().Set("Retry-After", "1")
		edge.WriteJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	p := m.probes.Load()
	body["status"] = "ok"
	body["scenes"] = p.Scenes()
	body["replicas"] = p.Store.Replicas()
	edge.WriteJSON(w, http.StatusOK, body)
}
