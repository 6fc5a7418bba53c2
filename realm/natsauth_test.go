package realm

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestEmbeddedNATSListensOnlyForEnrolledGateways shows both halves of
// "nothing listens that nothing needs, and whatever listens authenticates":
// with no gateway enrolled the embedded server opens no TCP port at all
// (its simulated gateways connect in-process); once one is enrolled the
// port opens, refuses clients without credentials or with an unknown nkey,
// and confines the enrolled gateway to its own twin.
func TestEmbeddedNATSListensOnlyForEnrolledGateways(t *testing.T) {
	dir := t.TempDir()
	// The test holds the port while no gateway is enrolled: a realm that
	// tried to listen on it would fail to start. (Dialling a free port to
	// see that nothing answers is fooled by whatever else on the machine
	// takes it meanwhile.)
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := hold.Addr().String()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", NATSListen: addr}

	r, stop := runRealm(t, cfg)
	if url := r.embedded.ClientURL(); url != "" {
		t.Fatalf("with no gateway enrolled the embedded server listens at %s", url)
	}
	if !strings.Contains(r.node.NATSMode(r.cfg.NATS), "in-process only") {
		t.Errorf("natsMode = %q, want it to say in-process only", r.node.NATSMode(r.cfg.NATS))
	}
	stop()
	hold.Close()

	creds, err := EnrollGateway(dir, "", "zr", "press-1", "nats://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	r, _ = runRealm(t, cfg)
	if url := r.embedded.ClientURL(); url == "" || !strings.Contains(r.node.NATSMode(r.cfg.NATS), "authenticated clients at") {
		t.Fatalf("with a gateway enrolled: client URL %q, mode %q; want the port open", url, r.node.NATSMode(r.cfg.NATS))
	}
	url := "nats://" + addr
	if nc, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
		closeIf(nc)
		t.Fatalf("a client without credentials: %v, want an authorization violation", err)
	}
	stranger, _ := nkeys.CreateUser()
	spub, _ := stranger.PublicKey()
	if nc, err := nats.Connect(url, nats.Nkey(spub, stranger.Sign)); !errors.Is(err, nats.ErrAuthorization) {
		closeIf(nc)
		t.Fatalf("a client with an unknown nkey: %v, want an authorization violation", err)
	}

	kp, err := nkeys.FromSeed([]byte(creds.NKeySeed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	var refused natstest.Refusals
	gw, err := nats.Connect(url, nats.Nkey(pub, kp.Sign), nats.ErrorHandler(refused.Record))
	if err != nil {
		t.Fatalf("the enrolled gateway: %v", err)
	}
	t.Cleanup(gw.Close)
	own, err := gw.SubscribeSync("zr.twin.press-1.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	subs := []string{"zr.twin.conveyor-1.cmd.>", "zr.sessions.>", "$JS.API.>"}
	for _, subj := range subs {
		if _, err := gw.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	pubs := []string{"zr.twin.conveyor-1.state.belt", "zr.revocations", "$JS.API.STREAM.LIST"}
	for _, subj := range pubs {
		if err := gw.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Publish("zr.twin.press-1.cmd.probe", []byte("own")); err != nil {
		t.Fatal(err)
	}
	if m, err := own.NextMsg(10 * time.Second); err != nil || string(m.Data) != "own" {
		t.Fatalf("the gateway's own command subject: %v, %v; want it delivered", m, err)
	}
	waitForRefusals(t, &refused, "the enrolled gateway", subs, pubs)
}

// The NATS helpers these tests share with realm/clustertest (realmtest).
var (
	waitForRefusals = realmtest.WaitForRefusals
	closeIf         = realmtest.CloseIf
)
