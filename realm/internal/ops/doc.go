// Package ops owns what an operator and a load balancer see of a node:
// whether it has started, the background readiness probe (NATS,
// JetStream, stream leaders, the embedded store's disk) and the disk gate
// of the store's writes, the endpoints /livez, /readyz, /healthz and
// /metrics, and the node's Prometheus registry with its decision counter
// and its gauges of the audit log, the witness and the probe.
//
// It imports the plumbing it reads (internal/store, internal/audit,
// internal/natsembed, internal/buildinfo) and the shared
// realm/internal/edge; never the realm nor another part. What it probes is
// bound at start-up (Bind); until then it answers "not ready" with the
// start-up state the realm sets.
package ops
