package realm

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestEmbeddedNATSListensOnlyForEnrolledGateways shows both halves of
// "nothing listens that nothing needs, and whatever listens authenticates":
// with no gateway enrolled the embedded server opens no TCP port at all
// (its simulated gateways connect in-process); once one is enrolled the
// port opens, refuses clients without credentials or with an unknown nkey,
// and confines the enrolled gateway to its own twin.
func TestEmbeddedNATSListensOnlyForEnrolledGateways(t *testing.T) {
	dir := t.TempDir()
	addr := freeLoopbackAddr(t)
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", NATSListen: addr}

	r, stop := runRealm(t, cfg)
	if url := r.embedded.ClientURL(); url != "" {
		t.Fatalf("with no gateway enrolled the embedded server listens at %s", url)
	}
	if !strings.Contains(r.natsMode(), "in-process only") {
		t.Errorf("natsMode = %q, want it to say in-process only", r.natsMode())
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something accepts TCP at %s with no gateway enrolled", addr)
	}
	stop()

	creds, err := EnrollGateway(dir, "", "zr", "press-1", "nats://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	r, _ = runRealm(t, cfg)
	if url := r.embedded.ClientURL(); url == "" || !strings.Contains(r.natsMode(), "authenticated clients at") {
		t.Fatalf("with a gateway enrolled: client URL %q, mode %q; want the port open", url, r.natsMode())
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
	var mu sync.Mutex
	var denied []string
	gw, err := nats.Connect(url, nats.Nkey(pub, kp.Sign), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		denied = append(denied, err.Error())
		mu.Unlock()
	}))
	if err != nil {
		t.Fatalf("the enrolled gateway: %v", err)
	}
	t.Cleanup(gw.Close)
	own, err := gw.SubscribeSync("zr.twin.press-1.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"zr.twin.conveyor-1.cmd.>", "zr.sessions.>", "$JS.API.>"} {
		if _, err := gw.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	for _, subj := range []string{"zr.twin.conveyor-1.state.belt", "zr.revocations", "$JS.API.STREAM.LIST"} {
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
	want := []string{
		`Subscription to "zr.twin.conveyor-1.cmd.>"`, `Subscription to "zr.sessions.>"`, `Subscription to "$JS.API.>"`,
		`Publish to "zr.twin.conveyor-1.state.belt"`, `Publish to "zr.revocations"`, `Publish to "$JS.API.STREAM.LIST"`,
	}
	eventually(t, "the server to refuse the gateway everything outside its twin", func() bool {
		mu.Lock()
		defer mu.Unlock()
		all := strings.Join(denied, "\n")
		for _, w := range want {
			if !strings.Contains(all, w) {
				return false
			}
		}
		return true
	})
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func closeIf(nc *nats.Conn) {
	if nc != nil {
		nc.Close()
	}
}
