package ops

import (
	"regexp"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zerorealm/zerorealm/internal/audit"
)

// register adds the decision counter, the process's collectors and the
// gauges that read the bound probes; each reads 0 until the node has
// started.
func (m *Monitor) register() {
	auditStat := func(pick func(s audit.Stats) float64) func() float64 {
		return func() float64 {
			if p := m.bound(); p != nil && p.Audit != nil {
				return pick(p.Audit.Stats())
			}
			return 0
		}
	}
	witnessStat := func(pick func(s audit.WitnessStats) float64) func() float64 {
		return func() float64 {
			if p := m.bound(); p != nil && p.Witness != nil {
				return pick(p.Witness.Stats())
			}
			return 0
		}
	}
	m.registry.MustRegister(
		m.decisions,
		m.probeFailures,
		// Beside Go's defaults, the CPU its collector takes: a node runs
		// a lower collector target than Go's (serve --gc-percent, tuned by
		// this cost unless fixed), and this is what that costs.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/cpu/classes/gc/total:cpu-seconds$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_live", Help: "1 while the process serves HTTP (/livez)."},
			func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_ready", Help: "1 when this node can decide and write now (/readyz): started, and the readiness checks passing; a check a busy node can miss for a moment (jetstream, leaders) turns it to 0 after three failing probes in a row, and back to 1 after two passing ones."},
			func() float64 { return boolFloat(m.current().ready) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_disk_free_bytes", Help: "Free space under the embedded store's data dir at the last readiness probe; -1 when not measured (external NATS)."},
			func() float64 { return float64(m.current().diskFree) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "zerorealm_store_jetstream_restarts_total", Help: "Restarts of the embedded JetStream after a write failed on a full disk and space returned (0 with external NATS)."},
			func() float64 {
				// Read whether started or not, as the embedded server
				// runs from the start.
				if p := m.probes.Load(); p != nil && p.Disk != nil {
					return float64(p.Disk.Disk().Restarts)
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "zerorealm_nats_connected", Help: "1 while the realm's NATS connection is up."},
			func() float64 {
				p := m.bound()
				return boolFloat(p != nil && p.NATS != nil && p.NATS.Status() == nats.CONNECTED)
			}),
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
		}, func() float64 { return boolFloat(m.current().checks[check]) }))
	}
}

// bound is what the monitor probes while the node is started, nil else.
func (m *Monitor) bound() *Probes {
	if !m.started.Load() {
		return nil
	}
	return m.probes.Load()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
