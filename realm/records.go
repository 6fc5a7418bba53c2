package realm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/store"
)

// recordKeyFile, in the data dir, holds the cluster's record key unless
// Config.RecordKeyFile names another file: it authenticates every store
// record that grants power, so that whoever can write NATS cannot forge
// one. Every node of a cluster needs the same key: copy the file.
const recordKeyFile = "record.key"

// ledgerHeadFile, in the data dir, keeps the head of this node's receipt
// chain outside NATS, so a start notices the ledger's newest records
// deleted (see assets.ErrRolledBack).
const ledgerHeadFile = "ledger-head"

// reasonLedgerRolledBack is the StoreTampered reason of a ledger that lacks
// receipts this node signed.
const reasonLedgerRolledBack = "the ledger lacks the newest receipts this node signed"

// reasonStepUpReplayed is the StoreTampered reason of a step-up proof this
// node used, put back in the store.
const reasonStepUpReplayed = "step-up proof used already; an older record was put back"

// keyChecksBucket holds check values of the cluster's keys (not the keys):
// a node started with another record key finds out before it writes.
const (
	keyChecksBucket = "key-checks"
	recordKeyCheck  = "record"
	recordKeyLabel  = "zerorealm/record-key-check/v1"
)

// maxPendingTampers bounds the tamper events kept while the audit log is
// not open yet (reads at start-up); later ones are only logged and counted.
const maxPendingTampers = 1024

// recordKey loads (or creates) the record key and says which file it is.
func (r *Realm) recordKey() ([]byte, string, error) {
	file := r.cfg.RecordKeyFile
	if file == "" {
		file = filepath.Join(r.cfg.DataDir, recordKeyFile)
	}
	key, err := keyfile.LoadOrCreate(file, "record key")
	if err != nil {
		return nil, file, fmt.Errorf("realm: %w (without it no sealed record verifies)", err)
	}
	return key, file, nil
}

// checkRecordKey compares the record key with the cluster's check value.
func (r *Realm) checkRecordKey(ctx context.Context, key []byte, file string) error {
	b, err := r.store.Bucket(ctx, store.BucketConfig{Name: keyChecksBucket})
	if err != nil {
		return fmt.Errorf("realm: key checks: %w", err)
	}
	err = keyfile.Check(ctx, b, recordKeyCheck, key, recordKeyLabel)
	if errors.Is(err, keyfile.ErrMismatch) {
		return fmt.Errorf("realm: %s: %w; every node of a cluster authenticates its records under one record key: copy the key file of a node that already serves this cluster here (or point --record-key at it)", file, err)
	}
	if err != nil {
		return fmt.Errorf("realm: record key: %w", err)
	}
	return nil
}

// tampers turns the store's reports of records that do not verify into
// audit events and a metric.
type tampers struct {
	counter *prometheus.CounterVec
	// forged counts core NATS messages of "other nodes" dropped because
	// they are not authenticated (see package clustermsg).
	forged *prometheus.CounterVec

	mu      sync.Mutex
	log     *audit.Log // nil until the audit log is open
	pending []audit.Event
	seen    map[store.TamperEvent]bool // audited already; reset when large
}

func newTampers(reg *prometheus.Registry) *tampers {
	t := &tampers{counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerorealm_store_tampered_total",
		Help: "Sealed store records (bucket values, stream messages) that did not verify and were refused as absent, by bucket or stream.",
	}, []string{"resource"}),
		forged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_cluster_messages_refused_total",
			Help: "Core NATS messages claiming to come from another realm node (presence, heartbeats, snapshots) dropped because their tag under the cluster key did not verify or was out of time, by kind.",
		}, []string{"kind"})}
	reg.MustRegister(t.counter, t.forged)
	return t
}

// reportTamper is the store's OnTamper hook: it must not block.
func (r *Realm) reportTamper(ev store.TamperEvent) {
	resource := ev.Bucket
	if resource == "" {
		resource = ev.Stream
	}
	why, outcome := "sealed record does not verify under the cluster's record key: "+ev.Reason,
		"refused as if absent: nothing written without the record key grants anything"
	switch ev.Reason {
	case store.ReasonReplayed, reasonStepUpReplayed:
		why = "a genuine record put back out of its place in time: " + ev.Reason
	case session.ReasonRolledBack:
		why, outcome = "a session this node saw revoked reads live again: "+ev.Reason, "refused: the revocation stands"
	}
	e := audit.Event{
		Actor:    "realm:" + r.cfg.Node,
		Action:   "StoreTampered",
		Resource: fmt.Sprintf("StoreRecord::%q", resource+"/"+ev.Key),
		Outcome:  audit.Deny,
		Reasons:  []string{why, outcome},
		Signals:  map[string]any{"bucket": ev.Bucket, "stream": ev.Stream, "key": ev.Key, "revision": strconv.FormatUint(ev.Revision, 10), "reason": ev.Reason},
	}
	t := r.tampers
	t.mu.Lock()
	if t.seen[ev] {
		t.mu.Unlock()
		return
	}
	if t.seen == nil || len(t.seen) >= maxPendingTampers {
		t.seen = map[store.TamperEvent]bool{}
	}
	t.seen[ev] = true
	t.counter.WithLabelValues(resource).Inc()
	if ev.Reason == store.ReasonNoSeal {
		r.log.Warn("a sealed record carries no seal: forged, or written by a realm before records were sealed; such records are refused (start such a realm with a fresh data directory and NATS store, or delete the record)",
			"bucket", ev.Bucket, "stream", ev.Stream, "key", ev.Key)
	}
	log := t.log
	if log == nil && len(t.pending) < maxPendingTampers {
		t.pending = append(t.pending, e)
	}
	t.mu.Unlock()
	if log != nil {
		r.auditAsync(context.Background(), e)
	}
}

// auditTampers starts auditing tamper reports, first those made while the
// audit log was not open.
func (r *Realm) auditTampers() {
	t := r.tampers
	t.mu.Lock()
	pending := t.pending
	t.pending, t.log = nil, r.audit
	t.mu.Unlock()
	for _, e := range pending {
		r.auditAsync(context.Background(), e)
	}
}
