package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/internal/store/storetest"
)

var testRecordKey = []byte("zerorealm test record key 32 by!")

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestNodeIDIsStableAndChecked: the first start names the node and writes
// the name; later starts read it back; a file holding no node name is
// refused, naming the file.
func TestNodeIDIsStableAndChecked(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreateID(dir)
	if err != nil || !NamePattern.MatchString(first) {
		t.Fatalf("first id = %q (%v), want a node name", first, err)
	}
	if again, err := LoadOrCreateID(dir); err != nil || again != first {
		t.Fatalf("second id = %q (%v), want %q", again, err, first)
	}
	if err := os.WriteFile(filepath.Join(dir, "node-id"), []byte("not a/name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateID(dir); err == nil || !strings.Contains(err.Error(), "node-id") {
		t.Fatalf("bad id file: %v, want an error naming the file", err)
	}
}

// TestTampersAuditedOnceEachAfterTheLogOpens: reports made before the audit
// log opens are kept and audited when it does; a report repeated is
// counted and audited once.
func TestTampersAuditedOnceEachAfterTheLogOpens(t *testing.T) {
	reg := prometheus.NewRegistry()
	tm := NewTampers(reg)
	tm.Begin("n1", discard())
	ev := store.TamperEvent{Bucket: "sessions", Key: "s1", Reason: store.ReasonReplayed}
	tm.Report(ev)
	tm.Report(ev)
	var mu sync.Mutex
	var got []audit.Event
	tm.Audit(func(_ context.Context, e audit.Event) { mu.Lock(); got = append(got, e); mu.Unlock() })
	tm.Report(store.TamperEvent{Stream: "LEDGER", Key: "r1", Reason: ReasonLedgerRolledBack})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Actor != "realm:n1" || got[0].Action != "StoreTampered" || got[0].Outcome != audit.Deny ||
		!strings.Contains(got[0].Reasons[0], "put back out of its place in time") || got[1].Resource != `StoreRecord::"LEDGER/r1"` {
		t.Fatalf("audited %+v, want the replayed session once, then the ledger", got)
	}
	if n := counted(t, reg, "zerorealm_store_tampered_total", "sessions"); n != 1 {
		t.Fatalf("tampered sessions counted %v times, want 1", n)
	}
	tm.Forged("presence")
	if n := counted(t, reg, "zerorealm_cluster_messages_refused_total", "presence"); n != 1 {
		t.Fatalf("forged presence counted %v, want 1", n)
	}
}

// TestRecordKeyCheckedAcrossNodes: a second node with the same key passes
// the cluster's check value; one with another key is refused, naming its
// key file.
func TestRecordKeyCheckedAcrossNodes(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	key, file, err := LoadRecordKey(t.TempDir(), "")
	if err != nil || filepath.Base(file) != RecordKeyFile {
		t.Fatalf("LoadRecordKey = %s, %v", file, err)
	}
	if err := CheckRecordKey(ctx, st, key, file); err != nil {
		t.Fatalf("first check: %v", err)
	}
	if err := CheckRecordKey(ctx, st, key, file); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	other, otherFile, err := LoadRecordKey(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckRecordKey(ctx, st, other, otherFile); err == nil || !strings.Contains(err.Error(), otherFile) {
		t.Fatalf("another key: %v, want a refusal naming %s", err, otherFile)
	}
}

// TestRegistryListsLiveNodes: two registries on one store see each other;
// a node's others add the nodes heard otherwise; a stopped one leaves
// the list at once.
func TestRegistryListsLiveNodes(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	a, err := StartRegistry(ctx, st, Info{Node: "a", Started: time.Now()}, time.Second, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(ctx)
	b, err := StartRegistry(ctx, st, Info{Node: "b", Started: time.Now()}, time.Second, nil, discard())
	if err != nil {
		t.Fatal(err)
	}
	names := func() string {
		var out []string
		for _, n := range a.Live() {
			out = append(out, n.Node)
		}
		return strings.Join(out, ",")
	}
	waitFor(t, "a to see a and b", func() bool { return names() == "a,b" })
	if others := strings.Join(a.Others([]string{"c", "b", "a"}), ","); others != "b,c" {
		t.Fatalf("others of a = %s, want b (registry) then c (heard), never a itself, each once", others)
	}
	b.Stop(ctx)
	waitFor(t, "a to drop b", func() bool { return names() == "a" })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counted reads the counter name of reg with the one label value label.
func counted(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// newStore opens a store on a fresh single-node JetStream.
func newStore(t *testing.T) *store.Store {
	return storetest.New(t, store.Config{Logger: discard(), RecordKey: testRecordKey})
}
