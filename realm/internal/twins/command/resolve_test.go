package command

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/idempotency"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/scenes"
	"github.com/zerorealm/zerorealm/trust"
	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
	"github.com/zerorealm/zerorealm/twin/gateway/gatewaytest"
)

// twoNodes is two realm nodes' command services on one NATS server and
// store, and the real, enrolled gateway of conveyor-1 with its journal
// file, which trusts both nodes' grant keys.
type twoNodes struct {
	a, b    *Service
	w       *world
	gw      *gateway.Gateway
	journal string
	j       *gateway.Journal
	// diskFull makes the store refuse every write, as its disk gate does
	// when the disk under it is full.
	diskFull *atomic.Bool
}

func startTwoNodes(t *testing.T, gatewayOpts ...func(*gateway.Config)) *twoNodes {
	t.Helper()
	return startTwoNodesOf(t, "conveyor-1", gatewayOpts...)
}

// startTwoNodesOf is startTwoNodes with the enrolled gateway of twinID.
func startTwoNodesOf(t *testing.T, twinID string, gatewayOpts ...func(*gateway.Config)) *twoNodes {
	t.Helper()
	ctx := context.Background()
	cat, err := scenes.LoadBuiltin()
	if err != nil {
		t.Fatal(err)
	}
	keyA, _ := crypto.GenerateKey()
	keyB, _ := crypto.GenerateKey()
	dataA, dataB := t.TempDir(), t.TempDir()
	realmKeys := func() ([]common.Address, error) {
		return []common.Address{crypto.PubkeyToAddress(keyA.PublicKey), crypto.PubkeyToAddress(keyB.PublicKey)}, nil
	}
	creds, err := Enroll(dataA, cat, "zr", twinID, "", realmKeys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enroll(dataB, cat, "zr", twinID, "", realmKeys); err != nil {
		t.Fatal(err)
	}
	// Node B knows the same gateway: its file is node A's.
	copyFile(t, filepath.Join(dataA, GatewaysFile), filepath.Join(dataB, GatewaysFile))

	a, err := Prepare(Config{Catalog: cat, DataDir: dataA, Simulate: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Prepare(Config{Catalog: cat, DataDir: dataB})
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := natsembed.Start(ctx, natsembed.Config{DataDir: t.TempDir(), Prefix: "zr", Gateways: a.Gateways().NATSUsers(), ServerName: "resolve-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { embedded.Shutdown(context.Background()) })
	nc := embedded.Conn()
	diskFull := new(atomic.Bool)
	gate := func() error {
		if diskFull.Load() {
			return errors.New("the disk under the store is full")
		}
		return nil
	}
	st, err := store.New(ctx, nc, store.Config{Prefix: "zr", RecordKey: bytes.Repeat([]byte{7}, store.RecordKeySize), WriteGate: gate})
	if err != nil {
		t.Fatal(err)
	}

	// The gateway, as `zerorealm gateway` runs it, with its journal.
	kp, err := nkeys.FromSeed([]byte(creds.NKeySeed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	gwConn, err := embedded.ConnectInProcess("gateway-"+twinID, nats.Nkey(pub, kp.Sign))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gwConn.Close)
	signer, err := twin.SignerFromHex(creds.Key)
	if err != nil {
		t.Fatal(err)
	}
	n := &twoNodes{journal: filepath.Join(t.TempDir(), twinID+".journal"), diskFull: diskFull}
	j, err := gateway.OpenJournal(gateway.JournalConfig{Path: n.journal}, signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	n.j = j
	gwCfg := gateway.Config{Twin: creds.Twin, Actuators: creds.Actuators, Conn: gwConn, Prefix: "zr", RealmKeys: creds.RealmKeys, Signer: signer, Journal: j}
	for _, opt := range gatewayOpts {
		opt(&gwCfg)
	}
	n.gw, err = gateway.New(gwCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.gw.Close)

	engine, err := trust.New(trust.Config{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := engine.NewTracker().Observe(trust.PasskeyAssertion{At: time.Now(), UserVerified: true, Attested: true})
	if err != nil {
		t.Fatal(err)
	}
	n.w = &world{zones: map[string]string{}, proofs: map[string]bool{}, sessions: map[string]session.Session{}, avatars: map[string]*avatar.Avatar{}}
	deps := func(key *ecdsa.PrivateKey, emb InProcess) Deps {
		return Deps{Conn: nc, Prefix: "zr", Store: st, Key: key, Embedded: emb, ResolveEvery: 200 * time.Millisecond,
			Decider: n.w, Subject: subject, Auditor: n.w, StepUps: n.w, Trust: trusted{as}, Locator: n.w,
			Sessions: n.w, Avatars: avatarDirectory{n.w}, Events: n.w}
	}
	if err := a.Start(ctx, deps(keyA, embedded)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := b.Start(ctx, deps(keyB, nil)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	n.a, n.b = a, b
	waitFor(t, "the gateway to hear the revocation feed", func() bool { age := n.gw.FeedAge(); return age >= 0 && age < time.Second })
	return n
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAckedCommandResolvesOnAnotherNode: node A claims a command's key,
// the gateway carries the command out and acknowledges it, and node A
// stops before it stores the answer. A retry with the same key on node B
// gets the answer node A would have stored, byte for byte (the same
// acknowledgement), once the grant has expired, and the actuator ran
// once. A second such command, never retried, is settled by node B's
// reconciler, and a third, which the gateway refused, is answered with
// that refusal.
func TestAckedCommandResolvesOnAnotherNode(t *testing.T) {
	n := startTwoNodes(t)
	ctx := context.Background()
	ada := n.w.signIn("ada", "conveyor-line", "operator")

	c := newCommand(t, "conveyor-1", "belt-speed", ada, "lost-answer", 1.5)
	if rec, err := n.a.ClaimCommand(ctx, c); rec != nil || err != nil {
		t.Fatalf("first claim: %+v, %v", rec, err)
	}
	answer, err := n.a.ExecuteClaimed(ctx, ada, c, twin.CommandRequest{})
	if err != nil || answer.Status != StatusDone {
		t.Fatalf("command on node A: %+v, %v", answer, err)
	}
	// What node A would have stored (the record keeps it compact).
	var stored bytes.Buffer
	if err := json.Compact(&stored, EncodeAnswer(answer)); err != nil {
		t.Fatal(err)
	}
	want := stored.Bytes()
	// A second command, whose client never comes back.
	quiet := newCommand(t, "conveyor-1", "belt-speed", ada, "nobody-retries", 1.0)
	if rec, err := n.a.ClaimCommand(ctx, quiet); rec != nil || err != nil {
		t.Fatalf("claim: %+v, %v", rec, err)
	}
	if ans, err := n.a.ExecuteClaimed(ctx, ada, quiet, twin.CommandRequest{}); err != nil || ans.Status != StatusDone {
		t.Fatalf("second command on node A: %+v, %v", ans, err)
	}
	// A third, which the gateway refuses (its emergency stop is engaged).
	n.gw.EmergencyStop(ctx, true)
	stopped := newCommand(t, "conveyor-1", "belt-speed", ada, "refused-lost", 0.5)
	if rec, err := n.a.ClaimCommand(ctx, stopped); rec != nil || err != nil {
		t.Fatalf("claim: %+v, %v", rec, err)
	}
	refused, err := n.a.ExecuteClaimed(ctx, ada, stopped, twin.CommandRequest{})
	if err != nil || refused.Status != StatusRefused {
		t.Fatalf("command under an emergency stop: %+v, %v", refused, err)
	}
	n.gw.EmergencyStop(ctx, false)
	// Node A stops here, between the acknowledgements and storing them.
	n.a.Close()

	// While the grant may still be on its way, the retry is told to wait.
	if _, err := n.b.ClaimCommand(ctx, c); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("retry while the grant is live: %v, want in progress", err)
	}
	var rec *idempotency.Record
	waitFor(t, "the retry to get the first answer", func() bool {
		rec, err = n.b.ClaimCommand(ctx, c)
		return err == nil
	})
	if rec == nil || rec.Status != statusAnswered || !bytes.Equal(rec.Answer, want) {
		t.Fatalf("retry on node B got %+v, want status 200 and the answer node A would have stored:\n%s\ngot:\n%s", rec, want, rec.Answer)
	}
	waitFor(t, "the reconciler to settle the command nobody retries", func() bool {
		rec, err := n.b.commands.Claim(ctx, quiet.Operator, quiet.Key, hashOf(quiet))
		return err == nil && rec != nil && rec.Done()
	})
	var refusedStored bytes.Buffer
	if err := json.Compact(&refusedStored, EncodeAnswer(refused)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused command's retry", func() bool {
		rec, err = n.b.ClaimCommand(ctx, stopped)
		return err == nil
	})
	if rec == nil || rec.Status != statusAnswered || !bytes.Equal(rec.Answer, refusedStored.Bytes()) {
		t.Fatalf("retry of the refused command got %+v, want node A's refusal:\n%s", rec, refusedStored.Bytes())
	}
	if got := n.gw.Accepted(); got != 2 {
		t.Fatalf("the gateway carried out %d grants, want 2: each command once", got)
	}
	// The retries' answer is the first, and the actuator does not move again.
	if rec, err := n.b.ClaimCommand(ctx, c); err != nil || !bytes.Equal(rec.Answer, want) {
		t.Fatalf("a later retry: %+v, %v", rec, err)
	}
	if keys, err := n.b.settle.inflight.Keys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("commands still in flight after settling: %v, %v", keys, err)
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	resolved := 0
	for _, ev := range n.w.events {
		if ev.Signals["resolved"] == true && ev.Signals[auditResult] == string(twin.ResultDone) {
			resolved++
		}
	}
	if resolved != 2 {
		t.Fatalf("%d settled commands audited, want 2", resolved)
	}
}

func hashOf(c twin.Command) []byte {
	h := c.Hash()
	return h[:]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, data, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnsentCommandIsFreedOnAnotherNode: node A records a command in
// flight, its grant finds no gateway, and node A stops before it frees
// the key. Once the grant has expired, the gateway's journal says it was
// never carried out, and a retry on node B carries the command out anew,
// once.
func TestUnsentCommandIsFreedOnAnotherNode(t *testing.T) {
	n := startTwoNodes(t)
	ctx := context.Background()
	ada := n.w.signIn("ada", "conveyor-line", "operator")
	// The journal covers grants that cannot have begun before it opened,
	// give or take the clocks' skew.
	waitFor(t, "the journal to reach back a second", func() bool { return time.Since(twin.FromMillis(n.j.Since())) > time.Second })

	n.gw.Close()
	c := newCommand(t, "conveyor-1", "belt-speed", ada, "unsent", 2)
	if rec, err := n.a.ClaimCommand(ctx, c); rec != nil || err != nil {
		t.Fatalf("claim: %+v, %v", rec, err)
	}
	if _, err := n.a.ExecuteClaimed(ctx, ada, c, twin.CommandRequest{}); twin.ReasonOf(err) != twin.ReasonNoGateway {
		t.Fatalf("command with no gateway: %v", err)
	}
	// Node A stops here, before it frees the key.
	n.a.Close()
	if err := n.gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.retryOnBCarriesOutOnce(t, ada, c)
}

// retryOnBCarriesOutOnce waits for a retry of c on node B to find its key
// free, carries c out there, and checks that the gateway carried out one
// grant in all.
func (n *twoNodes) retryOnBCarriesOutOnce(t *testing.T, op Operator, c twin.Command) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "the key to be freed", func() bool {
		rec, err := n.b.ClaimCommand(ctx, c)
		return err == nil && rec == nil
	})
	answer, err := n.b.ExecuteClaimed(ctx, op, c, twin.CommandRequest{})
	if err != nil || answer.Status != StatusDone {
		t.Fatalf("the retry on node B: %+v, %v", answer, err)
	}
	if got := n.gw.Accepted(); got != 1 {
		t.Fatalf("the gateway carried out %d grants, want 1", got)
	}
}

// TestKeyHeldByFullDiskIsFreed: a command's first request on node A
// stores its key's claim but fails before it learns so (the chaos suite's
// full disk: 503), so the node neither carries the command out nor frees
// the key. Retries while the disk is full are refused (507); once it has
// room again, a retry on node B answers "in progress" while the claim is
// young, then, the claim too old for any grant of it to be sent, frees
// the key and carries the command out, once.
func TestKeyHeldByFullDiskIsFreed(t *testing.T) {
	n := startTwoNodes(t)
	ctx := context.Background()
	ada := n.w.signIn("ada", "conveyor-line", "operator")

	c := newCommand(t, "conveyor-1", "belt-speed", ada, "full-disk", 1.25)
	// What the first request's claim left in the store.
	if rec, err := n.a.commands.Claim(ctx, c.Operator, c.Key, hashOf(c)); rec != nil || err != nil {
		t.Fatalf("claim: %+v, %v", rec, err)
	}
	n.diskFull.Store(true)
	if _, err := n.a.ClaimCommand(ctx, c); !errors.Is(err, store.ErrInsufficientStorage) {
		t.Fatalf("retry on a full disk: %v, want the store's insufficient storage", err)
	}
	n.diskFull.Store(false)

	// Young, the claim may still be deciding on its node: no retry frees it.
	if rec, err := n.b.ClaimCommand(ctx, c); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("retry of a young claim: %+v, %v; want in progress", rec, err)
	}
	n.b.unsentAfter = time.Second
	n.retryOnBCarriesOutOnce(t, ada, c)
}

// TestKeyWithCommandInFlightIsNotFreedUnsent: a claim however old whose
// command is in flight is the gateway's journal's to settle, never freed
// as unsent.
func TestKeyWithCommandInFlightIsNotFreedUnsent(t *testing.T) {
	n := startTwoNodes(t)
	ctx := context.Background()
	ada := n.w.signIn("ada", "conveyor-line", "operator")
	c := newCommand(t, "conveyor-1", "belt-speed", ada, "in-flight", 0.75)
	if rec, err := n.a.ClaimCommand(ctx, c); rec != nil || err != nil {
		t.Fatalf("claim: %+v, %v", rec, err)
	}
	if _, err := n.a.ExecuteClaimed(ctx, ada, c, twin.CommandRequest{}); err != nil {
		t.Fatal(err)
	}
	// Node A stops before it stores the answer; node B, at once, with
	// every claim counted as old.
	n.a.Close()
	n.b.unsentAfter = 0
	rec, err := n.b.commands.Claim(ctx, c.Operator, c.Key, hashOf(c))
	if err != nil || rec == nil || rec.Done() {
		t.Fatalf("the held claim: %+v, %v", rec, err)
	}
	if freed, err := n.b.settle.freeUnsent(ctx, c, rec, n.b.unsentAfter); freed || err != nil {
		t.Fatalf("freeUnsent of a command in flight = %v, %v; want false, nil", freed, err)
	}
}

// withHeldDriver gives the gateway's actuator id a driver whose moves
// wait until the test releases them.
func withHeldDriver(id string, d **gatewaytest.Held) func(*gateway.Config) {
	return func(cfg *gateway.Config) {
		for _, a := range cfg.Actuators {
			if a.ID == id {
				*d = gatewaytest.NewHeld(a)
				cfg.Drivers = map[string]gateway.Driver{id: *d}
			}
		}
	}
}

// TestCommandInProgressIsNotItsAnswer: the gateway's driver takes longer
// than the realm's delivery timeout. The first request's delivery times
// out, and the key is freed (as the API does after any error). The
// client's retry with the key reaches the gateway while the driver still
// runs, and the gateway refuses that grant as command_in_progress: that
// refusal is not the command's answer and is not stored. The retry is
// answered ErrOutcomePending (409 with Retry-After at the edge), the key
// stays claimed, and retries on either node are told to wait while the
// driver runs. Once it has finished, a retry gets the acknowledgement of
// the grant that ran, stored as the command's answer; the actuator moved
// once.
func TestCommandInProgressIsNotItsAnswer(t *testing.T) {
	var slow *gatewaytest.Held
	n := startTwoNodes(t, withHeldDriver("belt-speed", &slow))
	ctx := context.Background()
	ada := n.w.signIn("ada", "conveyor-line", "operator")

	c := newCommand(t, "conveyor-1", "belt-speed", ada, "slow-driver", 1.5)
	if rec, err := n.a.ClaimCommand(ctx, c); rec != nil || err != nil {
		t.Fatalf("first claim: %+v, %v", rec, err)
	}
	if _, err := n.a.ExecuteClaimed(ctx, ada, c, twin.CommandRequest{}); twin.ReasonOf(err) != twin.ReasonNoGateway {
		t.Fatalf("first request with the driver still running: %v, want no_gateway (the delivery timed out)", err)
	}
	if err := n.a.ReleaseCommand(ctx, c); err != nil {
		t.Fatal(err)
	}
	if slow.Moves() != 1 {
		t.Fatalf("the driver was called %d times, want 1", slow.Moves())
	}

	// The client's retry, on node B, while the driver runs.
	if rec, err := n.b.ClaimCommand(ctx, c); rec != nil || err != nil {
		t.Fatalf("retry's claim: %+v, %v", rec, err)
	}
	answer, err := n.b.ExecuteClaimed(ctx, ada, c, twin.CommandRequest{})
	if !errors.Is(err, ErrOutcomePending) || !errors.Is(err, idempotency.ErrInProgress) || answer != nil {
		t.Fatalf("retry while the driver runs: %+v, %v; want ErrOutcomePending", answer, err)
	}
	for _, node := range []*Service{n.a, n.b} {
		if rec, err := node.ClaimCommand(ctx, c); !errors.Is(err, idempotency.ErrInProgress) {
			t.Fatalf("a further retry while the driver runs: %+v, %v; want in progress", rec, err)
		}
	}

	slow.Release()
	var rec *idempotency.Record
	waitFor(t, "the retry to get the command's outcome", func() bool {
		rec, err = n.a.ClaimCommand(ctx, c)
		return err == nil
	})
	var got Answer
	if rec == nil || rec.Status != statusAnswered || json.Unmarshal(rec.Answer, &got) != nil {
		t.Fatalf("retry after the driver finished: %+v", rec)
	}
	if got.Status != StatusDone || got.Ack == nil || got.Ack.Result != string(twin.ResultDone) || got.Ack.Target != 1.5 {
		t.Fatalf("the stored answer is %s, want the done acknowledgement of the grant that ran", rec.Answer)
	}
	if n.gw.Accepted() != 1 || slow.Moves() != 1 {
		t.Fatalf("the gateway carried out %d grants and the driver moved %d times, want 1 and 1", n.gw.Accepted(), slow.Moves())
	}
	if again, err := n.b.ClaimCommand(ctx, c); err != nil || !bytes.Equal(again.Answer, rec.Answer) {
		t.Fatalf("a later retry: %+v, %v", again, err)
	}
	if keys, err := n.b.settle.inflight.Keys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("commands still in flight after settling: %v, %v", keys, err)
	}
}
