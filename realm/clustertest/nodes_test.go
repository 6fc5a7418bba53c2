package clustertest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestTwoNodesOnThreeNodeCluster runs two realm nodes against a 3-node NATS
// cluster and checks that state written through one is read through the
// other, on streams and buckets with 3 replicas.
func TestTwoNodesOnThreeNodeCluster(t *testing.T) {
	servers, urls := nodes.Cluster(t)
	a := nodes.Start(t, realm.Config{NATS: urls, Node: "realm-a"})
	// localhost: b's auditor registers a passkey, which is bound to it.
	b := nodes.Start(t, realm.Config{NATS: urls, Node: "realm-b", Listen: "localhost:0"})
	auditor := realmtest.AuditorToken(t, b, "audra")

	var health map[string]any
	if code := realmtest.Get(t, b.URL()+"/healthz", &health); code != 200 || health["replicas"] != float64(3) {
		t.Fatalf("GET /healthz on b = %d %v, want 200 with 3 replicas", code, health)
	}
	// JetStream itself confirms the replica count of the shared streams.
	nc := natstest.Connect(t, natstest.ClusterURLs(servers))
	for _, name := range []string{"ZR_AUDIT", "KV_ZR_nodes"} {
		resp, err := nc.Request("$JS.API.STREAM.INFO."+name, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Config struct {
				Replicas int `json:"num_replicas"`
			} `json:"config"`
			Cluster struct {
				Replicas []json.RawMessage `json:"replicas"`
			} `json:"cluster"`
		}
		if err := json.Unmarshal(resp.Data, &info); err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d with %d followers, want 3 with 2", name, info.Config.Replicas, len(info.Cluster.Replicas))
		}
	}

	// A decision recorded through node a is read through node b.
	err := a.Audit().Record(context.Background(), audit.Event{
		Actor: "avatar-1", Action: "EnterZone", Resource: `Zone::"press-bay"`,
		Outcome: audit.Deny, Reasons: []string{"trust state is step-up"},
	})
	if err != nil {
		t.Fatal(err)
	}
	realmtest.Eventually(t, "node b lists node a's decision", func() bool {
		got := realmtest.GetAudit(t, b, auditor, "node=realm-a&outcome=deny")
		return len(got.Events) == 1 && got.Events[0].Actor == "avatar-1" && got.Events[0].Reasons[0] == "trust state is step-up"
	})
	// Each node sees the other in the node registry (a KV bucket).
	realmtest.Eventually(t, "both nodes registered", func() bool {
		var got struct{ Nodes []node.Info }
		realmtest.Get(t, a.URL()+"/v1/nodes", &got)
		return len(got.Nodes) == 2 && got.Nodes[0].Node == "realm-a" && got.Nodes[1].Node == "realm-b"
	})
	// Both chains verify through either node. Node b's first record (its
	// auditor's registration) is queued, not waited for: on a busy machine
	// its chain may not exist yet when the registry shows both nodes.
	var verify struct {
		OK     bool           `json:"ok"`
		Chains []audit.Report `json:"chains"`
	}
	var code int
	realmtest.Eventually(t, "both chains listed by node b's verify", func() bool {
		code = realmtest.Get(t, b.URL()+"/v1/audit/verify", &verify)
		return code != 200 || !verify.OK || len(verify.Chains) == 2
	})
	if code != 200 || !verify.OK || len(verify.Chains) != 2 {
		t.Fatalf("GET /v1/audit/verify on b = %d %+v, want two intact chains", code, verify)
	}
}
