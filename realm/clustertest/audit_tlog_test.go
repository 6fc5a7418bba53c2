package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

type servedCheckpoints struct {
	Checkpoints []audit.Served `json:"checkpoints"`
}

type servedProof struct {
	Proof []tlog.Hash `json:"proof"`
	Event string      `json:"event"`
}

// TestAuditTransparencyAcrossNodes runs two nodes on a 3-node NATS
// cluster: each checkpoints its chain and witnesses the other's; either
// serves checkpoints with the other's cosignature and proofs that verify
// against them; a client that kept an old checkpoint holds the log to it;
// and when an attacker with every NATS permission purges node a's chain,
// node b's verify names it from what b witnessed.
func TestAuditTransparencyAcrossNodes(t *testing.T) {
	ctx := context.Background()
	servers, urls := nodes.Cluster(t)
	a := nodes.Start(t, realm.Config{NATS: urls, Node: "realm-a"})
	b := nodes.Start(t, realm.Config{NATS: urls, Node: "realm-b"})
	// One key ring per node: each signs grants and revocation notices with
	// its own key, so the notices of two nodes never share a sequence.
	if realmtest.Probe(a).GrantKey() == (common.Address{}) || realmtest.Probe(b).GrantKey() == (common.Address{}) || realmtest.Probe(a).GrantKey() == realmtest.Probe(b).GrantKey() {
		t.Fatal("the two nodes do not have grant keys of their own")
	}
	if realmtest.Probe(a).GrantKey() != realmtest.Probe(a).Ledger().Signer() {
		t.Fatalf("node a signs grants with %s and receipts with %s, want one key", realmtest.Probe(a).GrantKey().Hex(), realmtest.Probe(a).Ledger().Signer().Hex())
	}

	record := func(n int) {
		for i := range n {
			if err := a.Audit().Commit(ctx, audit.Event{Actor: fmt.Sprintf("avatar-%d", i), Action: "ChangeRoles", Resource: `Avatar::"x"`, Outcome: audit.Allow}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// newestOfA is a's newest checkpoint as node b serves it, once it has
	// at least size events and b's cosignature.
	newestOfA := func(size uint64) audit.Served {
		var got audit.Served
		realmtest.Eventually(t, fmt.Sprintf("node b serves a's checkpoint of %d events cosigned by b", size), func() bool {
			var cps servedCheckpoints
			if code := realmtest.Get(t, b.URL()+"/v1/audit/checkpoints?node=realm-a", &cps); code != 200 || len(cps.Checkpoints) != 1 {
				return false
			}
			got = cps.Checkpoints[0]
			return got.Size >= size && slices.Contains(got.Cosigners, "realm-b")
		})
		return got
	}
	record(5)
	old := newestOfA(5)
	if !strings.HasPrefix(old.Checkpoint, "localhost/zerorealm/audit/realm-a\n") {
		t.Fatalf("checkpoint = %q, want the origin localhost/zerorealm/audit/realm-a first", old.Checkpoint)
	}
	// The signed note itself, for a client that asks for text.
	req, _ := http.NewRequest(http.MethodGet, a.URL()+"/v1/audit/checkpoints?node=realm-a", nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if _, err := audit.OpenCheckpoint(text, old.Key); err != nil || !strings.Contains(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("text/plain checkpoint = %q (%s): %v", text, resp.Header.Get("Content-Type"), err)
	}

	record(7)
	cur := newestOfA(old.Size + 7)
	// Consistency: a client that kept the old checkpoint checks the new
	// one extends it, with a proof from either node.
	for _, n := range []*realm.Realm{a, b} {
		var p servedProof
		url := fmt.Sprintf("%s/v1/audit/proof/consistency?node=realm-a&from=%d&to=%d", n.URL(), old.Size, cur.Size)
		if code := realmtest.Get(t, url, &p); code != 200 {
			t.Fatalf("GET %s = %d", url, code)
		}
		kept := audit.Anchor{Node: old.Node, Key: old.Key, Checkpoint: old.Checkpoint}
		if _, err := audit.VerifyExtends(kept, []byte(cur.Checkpoint), p.Proof); err != nil {
			t.Fatalf("consistency proof from node %s: %v", n.Node(), err)
		}
		// A wrong proof does not pass.
		if len(p.Proof) > 0 {
			p.Proof[0][0] ^= 1
			if _, err := audit.VerifyExtends(kept, []byte(cur.Checkpoint), p.Proof); err == nil {
				t.Fatalf("a corrupted consistency proof from node %s verified", n.Node())
			}
		}
	}
	// Inclusion of a's third event (its stored bytes) in the current tree.
	nc := natstest.Connect(t, natstest.ClusterURLs(servers))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "ZR_AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	third := storedEvent(t, stream, "realm-a", 3)
	head, err := audit.OpenCheckpoint([]byte(cur.Checkpoint), cur.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*realm.Realm{a, b} {
		var p servedProof
		url := fmt.Sprintf("%s/v1/audit/proof/inclusion?node=realm-a&index=3&size=%d", n.URL(), cur.Size)
		if code := realmtest.Get(t, url, &p); code != 200 {
			t.Fatalf("GET %s = %d", url, code)
		}
		if err := audit.VerifyInclusion(p.Proof, head.Size, head.Root, 3, third); err != nil {
			t.Fatalf("inclusion proof from node %s: %v", n.Node(), err)
		}
		// The answer carries the leaf: the event as stored.
		if p.Event != string(third) {
			t.Fatalf("inclusion answer's event from node %s = %q, want the stored %q", n.Node(), p.Event, third)
		}
	}
	// Bad parameters are refused with the reason; sizes beyond the tree
	// have no proof.
	var problem map[string]any
	if code := realmtest.Get(t, a.URL()+"/v1/audit/proof/inclusion?node=realm-a&index=0&size=3", &problem); code != 400 {
		t.Fatalf("index 0 = %d, want 400", code)
	}
	if code := realmtest.Get(t, a.URL()+"/v1/audit/proof/consistency?node=realm-a&from=1&to=999999", &problem); code != 404 {
		t.Fatalf("consistency beyond the tree = %d, want 404", code)
	}

	// The attacker purges node a's chain; node b, a's witness, names it.
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject("zr.audit.realm-a")); err != nil {
		t.Fatal(err)
	}
	var res audit.Result
	if code := realmtest.Get(t, b.URL()+"/v1/audit/verify", &res); code != 200 || res.OK {
		t.Fatalf("GET /v1/audit/verify on b after the purge = %d %+v, want findings", code, res)
	}
	i := slices.IndexFunc(res.Findings, func(f audit.Finding) bool { return f.Node == "realm-a" && f.Kind == audit.KindVanished })
	if i < 0 || !strings.Contains(res.Findings[i].Detail, "known node realm-a has no chain") {
		t.Fatalf("findings on b = %+v, want realm-a's chain vanished", res.Findings)
	}
}

// storedEvent is the stored bytes of a node's event at index (from 1),
// one event per block as Commit stores them one at a time. A cluster under
// load may not answer a JetStream request at once, so it tries again.
func storedEvent(t *testing.T, stream jetstream.Stream, node string, index uint64) []byte {
	t.Helper()
	var found []byte
	realmtest.Eventually(t, fmt.Sprintf("reading event %d of %s from the stream", index, node), func() bool {
		found = findEvent(stream, node, index)
		return found != nil
	})
	return found
}

func findEvent(stream jetstream.Stream, node string, index uint64) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"zr.audit." + node}})
	if err != nil {
		return nil
	}
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil
		}
		for line := range strings.SplitSeq(string(m.Data()), "\n") {
			var ev audit.Event
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Index == index {
				return []byte(line)
			}
		}
	}
}

// TestNodeReportsAChainCutWhileItWasAway stops a single node, has an
// attacker with the store cut its chain, and restarts it: the node logs it,
// counts it in zerorealm_audit_start_findings, and /v1/audit/verify names
// it, from the checkpoint the node kept in its data directory.
func TestNodeReportsAChainCutWhileItWasAway(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	cfg := realm.Config{DataDir: data, Listen: "127.0.0.1:0"}
	r, stop := nodes.Run(t, cfg)
	node := r.Node()
	for i := range 6 {
		if err := r.Audit().Commit(ctx, audit.Event{Actor: fmt.Sprintf("avatar-%d", i), Action: "ChangeRoles", Resource: `Avatar::"x"`, Outcome: audit.Allow}); err != nil {
			t.Fatal(err)
		}
	}
	stop() // the last checkpoint is signed and kept at shutdown

	// The attacker opens the node's store and deletes its newest blocks.
	emb, err := natsembed.Start(ctx, natsembed.Config{DataDir: data, Prefix: "zr", ServerName: node})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(emb.Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "ZR_AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.LastSeq; seq > info.State.LastSeq-3; seq-- {
		if err := stream.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	emb.Shutdown(ctx)

	r2, _ := nodes.Run(t, cfg)
	var res audit.Result
	if code := realmtest.Get(t, r2.URL()+"/v1/audit/verify", &res); code != 200 || res.OK {
		t.Fatalf("GET /v1/audit/verify after the cut = %d %+v, want findings", code, res)
	}
	i := slices.IndexFunc(res.Findings, func(f audit.Finding) bool { return f.Node == node && f.Kind == audit.KindTruncated })
	if i < 0 || !strings.Contains(res.Findings[i].Detail, "were removed") {
		t.Fatalf("findings = %+v, want node %s's chain truncated", res.Findings, node)
	}
	if v, ok := realmtest.Metric(t, r2.URL(), "zerorealm_audit_start_findings"); !ok || v != 1 {
		t.Fatalf("zerorealm_audit_start_findings = %v (served %v), want the start finding counted", v, ok)
	}
}
