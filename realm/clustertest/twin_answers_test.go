package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
	"github.com/zerorealm/zerorealm/twin/gateway/gatewaytest"
)

const beltCommands = "/v1/twins/conveyor-1/actuators/belt-speed/commands"

// httpAnswer is one answer to a command's POST.
type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

// postCommand posts a twin command with its Idempotency-Key; err is set
// when no answer came back at all.
func postCommand(o realmtest.Operator, base, key string, value float64) (httpAnswer, error) {
	body, _ := json.Marshal(map[string]any{"op": "set", "value": value, "reason": "retried"})
	req, err := http.NewRequest("POST", base+beltCommands, bytes.NewReader(body))
	if err != nil {
		return httpAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Authorization", "Bearer "+o.Token)
	resp, err := o.HTTP.Do(req)
	if err != nil {
		return httpAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return httpAnswer{status: resp.StatusCode, header: resp.Header, body: raw}, err
}

// problemType is the answer's problem type, without its base.
func (a httpAnswer) problemType() string {
	var p edge.Problem
	_ = json.Unmarshal(a.body, &p)
	return strings.TrimPrefix(p.Type, edge.ProblemBase)
}

// TestTwinCommandAnswersOverHTTP: two realm nodes on a 3-node NATS
// cluster, one enrolled gateway of conveyor-1 with a belt driver the test
// holds, and an operator standing beside the belt. Over HTTP, with the
// same Idempotency-Key each time:
//   - slow driver: node A's delivery times out while the driver runs
//     (503); the retry on node B reaches the gateway while it still runs
//     and is told to ask again (409 idempotency-key-in-progress with
//     Retry-After), not given the gateway's command_in_progress refusal
//     as the command's answer; once the driver finishes, a retry gets the
//     done acknowledgement, and the belt moved once;
//   - lost answer: node A gets the gateway's acknowledgement and stops
//     before it stores or sends the answer (the stop point of
//     command.TestAckedCommandResolvesOnAnotherNode); the retry on node B
//     gets node A's answer, same status and body, marked as replayed, and
//     the belt moved once.
func TestTwinCommandAnswersOverHTTP(t *testing.T) {
	servers, urls := nodes.Cluster(t)
	a, stopA, b, creds, signer := gatewayOnTwoNodes(t, urls, "conveyor-1")

	// The gateway, beside the belt, with a driver the test holds.
	var belt *gatewaytest.Held
	for _, act := range creds.Actuators {
		if act.ID == "belt-speed" {
			belt = gatewaytest.NewHeld(act)
		}
	}
	gw, err := gateway.New(gateway.Config{Twin: "conveyor-1", Actuators: creds.Actuators, Conn: natstest.Connect(t, servers[1].ClientURL()),
		Prefix: "zr", RealmKeys: []common.Address{realmtest.Probe(a).GrantKey(), realmtest.Probe(b).GrantKey()}, Signer: signer,
		Drivers: map[string]gateway.Driver{"belt-speed": belt}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.Close)
	realmtest.Eventually(t, "the gateway to hear a revocation feed", func() bool { age := gw.FeedAge(); return age >= 0 && age < time.Second })

	ada := realmtest.NewOperator(t, a, "ada", "operator")
	walker := realmtest.JoinFoundryAs(t, a, ada.Sess.Token, ada.ID, ada.Sess.Session.ID)
	walker.Walk("conveyor-line", a, b)

	// The retries a client makes after a 409, on node B, until another
	// answer comes.
	retryOnB := func(key string, value float64) httpAnswer {
		t.Helper()
		var last httpAnswer
		realmtest.EventuallyWithin(t, "a retry on node B to get the command's outcome", 60*time.Second, func() bool {
			ans, err := postCommand(ada, b.URL(), key, value)
			if err != nil {
				t.Fatalf("retry on node B: %v", err)
			}
			last = ans
			return ans.status != http.StatusConflict
		})
		return last
	}

	// A slow driver: the refusal of a second grant while the first runs
	// is not the command's answer.
	first, err := postCommand(ada, a.URL(), "slow-belt", 1.5)
	// The delivery's timeout (2 s) or the request's deadline (3 s), on a
	// loaded machine, whichever ends it first.
	if err != nil || first.status != http.StatusServiceUnavailable || first.problemType() != edge.TypeGatewayAbsent && first.problemType() != edge.TypeRequestTimeout {
		t.Fatalf("first request while the driver runs = %d %s, %v; want 503 (the delivery timed out)", first.status, first.body, err)
	}
	for range 2 {
		retry, err := postCommand(ada, b.URL(), "slow-belt", 1.5)
		if err != nil || retry.status != http.StatusConflict || retry.problemType() != edge.TypeIdempotencyBusy || retry.header.Get("Retry-After") == "" {
			t.Fatalf("retry while the driver runs = %d %v %s, %v; want 409 %s with Retry-After", retry.status, retry.header, retry.body, err, edge.TypeIdempotencyBusy)
		}
	}
	belt.Release()
	done := retryOnB("slow-belt", 1.5)
	var answer command.Answer
	if err := json.Unmarshal(done.body, &answer); err != nil || done.status != http.StatusOK || answer.Status != command.StatusDone || answer.Ack == nil || answer.Ack.Target != 1.5 {
		t.Fatalf("retry once the driver finished = %d %s, want 200 with the done acknowledgement", done.status, done.body)
	}
	if gw.Accepted() != 1 || belt.Moves() != 1 {
		t.Fatalf("the gateway carried out %d grants and the belt moved %d times, want 1 and 1", gw.Accepted(), belt.Moves())
	}

	// A lost answer: node A stops between the gateway's acknowledgement
	// and storing it.
	var lost struct {
		sync.Mutex
		status int
		body   []byte
	}
	realmtest.Probe(a).StopBeforeStoringCommand(func(key string, status int, body []byte) bool {
		if key != "lost-answer" {
			return false
		}
		lost.Lock()
		defer lost.Unlock()
		lost.status, lost.body = status, bytes.Clone(body)
		return true
	})
	// Go's transport sends a request with an Idempotency-Key again when
	// its connection is cut before an answer: the replay, to node A still,
	// is told to wait.
	if ans, err := postCommand(ada, a.URL(), "lost-answer", 0.5); err == nil && (ans.status != http.StatusConflict || ans.problemType() != edge.TypeIdempotencyBusy) {
		t.Fatalf("node A answered %d %s, want no answer (it stops before storing), or 409 to the transport's replay", ans.status, ans.body)
	}
	stopA()
	lost.Lock()
	status, body := lost.status, lost.body
	lost.Unlock()
	if status != http.StatusOK || !bytes.Contains(body, []byte(`"done"`)) {
		t.Fatalf("node A's lost answer = %d %s, want 200 done", status, body)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, body); err != nil {
		t.Fatal(err)
	}
	got := retryOnB("lost-answer", 0.5)
	var gotCompact bytes.Buffer
	if err := json.Compact(&gotCompact, got.body); err != nil {
		t.Fatalf("retry on node B = %d %s: %v", got.status, got.body, err)
	}
	if got.status != status || !bytes.Equal(gotCompact.Bytes(), want.Bytes()) || got.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry on node B = %d (replayed %q)\n%s\nwant node A's answer %d\n%s", got.status, got.header.Get("Idempotent-Replayed"), got.body, status, want.Bytes())
	}
	if gw.Accepted() != 2 || belt.Moves() != 2 {
		t.Fatalf("the gateway carried out %d grants and the belt moved %d times, want 2 and 2: each command once", gw.Accepted(), belt.Moves())
	}
}

// gatewayOnTwoNodes enrolls twinID's gateway in node A's data directory,
// gives node B the same enrollment, so that both nodes know the one
// gateway, and starts A (stoppable) and B on the cluster at urls. It
// returns the gateway's credentials and its signing key.
func gatewayOnTwoNodes(t *testing.T, urls []string, twinID string) (a *realm.Realm, stopA func(), b *realm.Realm, creds realm.GatewayCredentials, signer *twin.Signer) {
	t.Helper()
	dirA, dirB := t.TempDir(), t.TempDir()
	creds, err := realm.EnrollGateway(dirA, "", "zr", twinID, "")
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := os.ReadFile(filepath.Join(dirA, realm.TwinGatewaysFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, realm.TwinGatewaysFile), enrolled, 0o600); err != nil {
		t.Fatal(err)
	}
	a, stopA = nodes.Run(t, realm.Config{DataDir: dirA, NATS: urls, Node: "realm-a", Listen: "localhost:0"})
	b = nodes.Start(t, realm.Config{DataDir: dirB, NATS: urls, Node: "realm-b", Listen: "localhost:0", Origins: realmtest.Probe(a).Origins()})
	if signer, err = twin.SignerFromHex(creds.Key); err != nil {
		t.Fatal(err)
	}
	return a, stopA, b, creds, signer
}
