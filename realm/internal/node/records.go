package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/store"
)

// RecordKeyFile, in the data dir, holds the cluster's record key unless
// the configuration names another file: it authenticates every store
// record that grants power, so that whoever can write NATS cannot forge
// one. Every node of a cluster needs the same key: copy the file.
const RecordKeyFile = "record.key"

// ReasonLedgerRolledBack is the StoreTampered reason of a ledger that lacks
// receipts this node signed.
const ReasonLedgerRolledBack = "the ledger lacks the newest receipts this node signed"

// ReasonStepUpReplayed is the StoreTampered reason of a step-up proof this
// node used, put back in the store.
const ReasonStepUpReplayed = "step-up proof used already; an older record was put back"

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

// LoadRecordKey loads (or creates) the record key from file, default
// DataDir/record.key, and says which file it is.
func LoadRecordKey(dataDir, file string) ([]byte, string, error) {
	if file == "" {
		file = filepath.Join(dataDir, RecordKeyFile)
	}
	key, err := keyfile.LoadOrCreate(file, "record key")
	switch {
	case errors.Is(err, keyfile.ErrNotPrivate):
		return nil, file, err
	case err != nil:
		return nil, file, fmt.Errorf("%w (without it no sealed record verifies)", err)
	}
	return key, file, nil
}

// CheckRecordKey compares the record key with the cluster's check value.
func CheckRecordKey(ctx context.Context, st *store.Store, key []byte, file string) error {
	b, err := st.Bucket(ctx, store.BucketConfig{Name: keyChecksBucket})
	if err != nil {
		return fmt.Errorf("key checks: %w", err)
	}
	err = keyfile.Check(ctx, b, recordKeyCheck, key, recordKeyLabel)
	if errors.Is(err, keyfile.ErrMismatch) {
		return fmt.Errorf("%s: %w; every node of a cluster authenticates its records under one record key: copy the key file of a node that already serves this cluster here (or point --record-key at it)", file, err)
	}
	if err != nil {
		return fmt.Errorf("record key: %w", err)
	}
	return nil
}

// Tampers turns the store's reports of records that do not verify into
// audit events and a metric.
type Tampers struct {
	counter *prometheus.CounterVec
	// forged counts core NATS messages of "other nodes" dropped because
	// they are not authenticated (see package clustermsg).
	forged *prometheus.CounterVec

	mu      sync.Mutex
	node    string
	log     *slog.Logger
	record  func(context.Context, audit.Event) // nil until the audit log is open
	pending []audit.Event
	seen    map[store.TamperEvent]bool // audited already; reset when large
}

// NewTampers registers the tamper metrics; Begin names the node before
// the store reports anything.
func NewTampers(reg *prometheus.Registry) *Tampers {
	t := &Tampers{counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zerorealm_store_tampered_total",
		Help: "Sealed store records (bucket values, stream messages) that did not verify and were refused as absent, by bucket or stream.",
	}, []string{"resource"}),
		forged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zerorealm_cluster_messages_refused_total",
			Help: "Core NATS messages claiming to come from another realm node (presence, heartbeats, snapshots) dropped because their tag under the cluster key did not verify or was out of time, by kind.",
		}, []string{"kind"}),
		log: slog.New(slog.DiscardHandler)}
	reg.MustRegister(t.counter, t.forged)
	return t
}

// Begin names the node its audit events come from, once it is known.
func (t *Tampers) Begin(node string, log *slog.Logger) {
	t.mu.Lock()
	t.node, t.log = node, log
	t.mu.Unlock()
}

// Forged counts one cluster message of kind refused as not authentic.
func (t *Tampers) Forged(kind string) { t.forged.WithLabelValues(kind).Inc() }

// Report is the store's OnTamper hook: it must not block.
func (t *Tampers) Report(ev store.TamperEvent) {
	resource := ev.Bucket
	if resource == "" {
		resource = ev.Stream
	}
	why, outcome := "sealed record does not verify under the cluster's record key: "+ev.Reason,
		"refused as if absent: nothing written without the record key grants anything"
	switch ev.Reason {
	case store.ReasonReplayed, ReasonStepUpReplayed:
		why = "a genuine record put back out of its place in time: " + ev.Reason
	case session.ReasonRolledBack:
		why, outcome = "a session this node saw revoked reads live again: "+ev.Reason, "refused: the revocation stands"
	}
	t.mu.Lock()
	if t.seen[ev] {
		t.mu.Unlock()
		return
	}
	e := audit.Event{
		Actor:    "realm:" + t.node,
		Action:   "StoreTampered",
		Resource: fmt.Sprintf("StoreRecord::%q", resource+"/"+ev.Key),
		Outcome:  audit.Deny,
		Reasons:  []string{why, outcome},
		Signals:  map[string]any{"bucket": ev.Bucket, "stream": ev.Stream, "key": ev.Key, "revision": strconv.FormatUint(ev.Revision, 10), "reason": ev.Reason},
	}
	if t.seen == nil || len(t.seen) >= maxPendingTampers {
		t.seen = map[store.TamperEvent]bool{}
	}
	t.seen[ev] = true
	t.counter.WithLabelValues(resource).Inc()
	if ev.Reason == store.ReasonNoSeal {
		t.log.Warn("a sealed record carries no seal: forged, or written by a realm before records were sealed; such records are refused (start such a realm with a fresh data directory and NATS store, or delete the record)",
			"bucket", ev.Bucket, "stream", ev.Stream, "key", ev.Key)
	}
	record := t.record
	if record == nil && len(t.pending) < maxPendingTampers {
		t.pending = append(t.pending, e)
	}
	t.mu.Unlock()
	if record != nil {
		record(context.Background(), e)
	}
}

// Audit starts auditing tamper reports with record (which must not wait),
// first those made while the audit log was not open.
func (t *Tampers) Audit(record func(context.Context, audit.Event)) {
	t.mu.Lock()
	pending := t.pending
	t.pending, t.record = nil, record
	t.mu.Unlock()
	for _, e := range pending {
		record(context.Background(), e)
	}
}
