package realm

import (
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/timings"
)

// metrics is the realm's own Prometheus registry: one per realm rather than
// the global default, so two realms in one process (tests) never collide.
type metrics struct {
	registry *prometheus.Registry
	// decisions counts every decision put on record, by action and
	// outcome: sign-ins, step-ups, sign-outs, trust assessments, scene
	// joins and zones, transfers, twin commands and approvals, as the
	// audit log names them.
	decisions *prometheus.CounterVec

	actions *timings.Labels // the action label values in use
}

// maxActionLabels bounds the action label's values; the realm's actions
// are a fixed vocabulary well under it, so it only guards the metric
// against a future action name built from input.
const maxActionLabels = 64

// decided counts one decision put on record (audit.Config.Observe).
func (m *metrics) decided(action string, outcome audit.Outcome) {
	action = m.actions.Value(action)
	m.decisions.WithLabelValues(action, string(outcome)).Inc()
}

func newMetrics(r *Realm) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_decisions_total",
			Help: "Decisions put on record in the audit log, by action (SignIn, StepUp, SignOut, AssessTrust, JoinScene, EnterZone, TransferAsset, CommandActuator, ApproveCommand, ...) and outcome (allow, deny).",
		}, []string{"action", "outcome"}),
		actions: timings.NewLabels(maxActionLabels),
	}
	auditStat := func(pick func(s audit.Stats) float64) func() float64 {
		return func() float64 {
			if !r.ready.Load() || r.audit == nil {
				return 0
			}
			return pick(r.audit.Stats())
		}
	}
	witnessStat := func(pick func(s audit.WitnessStats) float64) func() float64 {
		return func() float64 {
			if !r.ready.Load() || r.witness == nil {
				return 0
			}
			return pick(r.witness.Stats())
		}
	}
	m.registry.MustRegister(
		m.decisions,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_live", Help: "1 while the process serves HTTP (/livez)."},
			func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_ready", Help: "1 when this node can decide and write now (/readyz): started, and every readiness check passed at the last probe."},
			func() float64 { return boolFloat(r.currentReadiness().ready) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_disk_free_bytes", Help: "Free space under the embedded store's data dir at the last readiness probe; -1 when not measured (external NATS)."},
			func() float64 { return float64(r.currentReadiness().diskFree) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_store_jetstream_restarts_total", Help: "Restarts of the embedded JetStream after a write failed on a full disk and space returned (0 with external NATS)."},
			func() float64 {
				if r.embedded == nil {
					return 0
				}
				return float64(r.embedded.Disk().Restarts)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_nats_connected", Help: "1 while the realm's NATS connection is up."},
			func() float64 { return boolFloat(r.ready.Load() && r.nc != nil && r.nc.Status() == nats.CONNECTED) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_events_recorded_total", Help: "Audit events accepted into the queue."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Recorded) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_events_stored_total", Help: "Audit events acknowledged by JetStream."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Stored) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_events_failed_total", Help: "Audit events that could not be stored (each one logged)."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Failed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_append_retries_total", Help: "Retried audit appends."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Retries) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_blocks_stored_total", Help: "Audit blocks (one JetStream append each, grouping the events that queued while the previous one was written) acknowledged; events stored divided by this is the group-commit batch size."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Blocks) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_audit_queue_depth", Help: "Audit events waiting to be stored."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Queued) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_checkpoints_total", Help: "Signed checkpoints of this node's audit chain."},
			auditStat(func(s audit.Stats) float64 { return float64(s.Checkpoints) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_checkpoint_failures_total", Help: "Checkpoints not kept in the data directory or not published (each one logged)."},
			auditStat(func(s audit.Stats) float64 { return float64(s.CheckpointFailures) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_audit_start_findings", Help: "Ways the stored chain failed this node's own last checkpoint at start (0 when intact); each one logged at error and listed by /v1/audit/verify."},
			auditStat(func(s audit.Stats) float64 { return float64(s.StartFindings) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_cosignatures_total", Help: "Other nodes' checkpoints this node verified and cosigned as their witness."},
			witnessStat(func(s audit.WitnessStats) float64 { return float64(s.Cosigned) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_audit_checkpoints_refused_total", Help: "Other nodes' checkpoints this node refused as their witness: not signed by the node's key or not consistent with the last accepted (each one logged at error)."},
			witnessStat(func(s audit.WitnessStats) float64 { return float64(s.Refused) })),
	)
	for _, check := range readyChecks {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "zerorealm_ready_check",
			Help:        "1 when the readiness check passed at the last probe: nats (connected), jetstream (answers), leaders (every stream and bucket this node writes has one), disk (embedded store: free space above the minimum).",
			ConstLabels: prometheus.Labels{"check": check},
		}, func() float64 { return boolFloat(r.currentReadiness().checks[check]) }))
	}
	return m
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
