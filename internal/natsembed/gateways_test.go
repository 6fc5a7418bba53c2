package natsembed

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

type gatewayCreds struct {
	twin string
	kp   nkeys.KeyPair
}

func newGatewayCreds(t *testing.T, twin string) gatewayCreds {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	return gatewayCreds{twin: twin, kp: kp}
}

func (g gatewayCreds) user(t *testing.T) GatewayUser {
	pub, err := g.kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return GatewayUser{Twin: g.twin, NKey: pub}
}

func connectGateway(t *testing.T, e *Embedded, g gatewayCreds, v *natstest.Refusals) *nats.Conn {
	t.Helper()
	pub, _ := g.kp.PublicKey()
	nc, err := nats.Connect(e.ClientURL(), nats.Nkey(pub, g.kp.Sign), nats.ErrorHandler(v.Record))
	if err != nil {
		t.Fatalf("gateway %s connect: %v", g.twin, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestGatewayIsolation shows that the server itself confines a gateway's
// credentials to its own twin: it cannot receive another twin's commands
// nor publish another twin's state, while the realm's own connection keeps
// full access.
func TestGatewayIsolation(t *testing.T) {
	ctx := context.Background()
	press, robot := newGatewayCreds(t, "press-1"), newGatewayCreds(t, "robot-1")
	e, err := Start(ctx, Config{DataDir: t.TempDir(), ClientListen: "127.0.0.1:0", Prefix: "zr",
		Gateways: []GatewayUser{press.user(t), robot.user(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(ctx) })

	if nc, err := nats.Connect(e.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected")
	}
	intruder, _ := nkeys.CreateUser()
	ipub, _ := intruder.PublicKey()
	if nc, err := nats.Connect(e.ClientURL(), nats.Nkey(ipub, intruder.Sign)); err == nil {
		nc.Close()
		t.Fatal("a client with an unenrolled nkey connected")
	}

	var pv, rv natstest.Refusals
	pressNC := connectGateway(t, e, press, &pv)
	robotNC := connectGateway(t, e, robot, &rv)

	// Its own commands arrive; another twin's cannot be subscribed to.
	own, err := pressNC.SubscribeSync("zr.twin.press-1.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := pressNC.SubscribeSync("zr.twin.robot-1.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	wildcard, err := pressNC.SubscribeSync("zr.twin.*.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	robotCmds, err := robotNC.SubscribeSync("zr.twin.robot-1.cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	for _, nc := range []*nats.Conn{pressNC, robotNC} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	realm := e.Conn()
	if err := realm.Publish("zr.twin.robot-1.cmd.gripper", []byte("for robot")); err != nil {
		t.Fatal(err)
	}
	if err := realm.Publish("zr.twin.press-1.cmd.ram", []byte("for press")); err != nil {
		t.Fatal(err)
	}
	if m, err := own.NextMsg(5 * time.Second); err != nil || string(m.Data) != "for press" {
		t.Fatalf("press gateway's own command = %v, %v; want it delivered", m, err)
	}
	if m, err := robotCmds.NextMsg(5 * time.Second); err != nil || string(m.Data) != "for robot" {
		t.Fatalf("robot gateway's own command = %v, %v; want it delivered", m, err)
	}
	for _, s := range []*nats.Subscription{stolen, wildcard} {
		if m, err := s.NextMsg(300 * time.Millisecond); err == nil {
			t.Errorf("press gateway received %q on %s, another twin's command", m.Data, s.Subject)
		}
	}
	eventually(t, func() bool { return pv.About(`"zr.twin.robot-1.cmd.>"`) && pv.About(`"zr.twin.*.cmd.>"`) },
		"the server to refuse the press gateway's subscriptions to robot commands")

	// Publishing: its own state goes through; another twin's state, a
	// command (impersonating the realm) and a revocation notice do not.
	stateSub, err := realm.SubscribeSync("zr.twin.*.state.>")
	if err != nil {
		t.Fatal(err)
	}
	_ = realm.Flush()
	cases := []struct {
		subject string
		allowed bool
	}{
		{"zr.twin.press-1.state.ram", true},
		{"zr.twin.robot-1.state.gripper", false},
		{"zr.twin.press-1.cmd.ram", false},
		{"zr.revocations", false},
		// The nodes' own revocation broadcasts (avatar/session/revocation,
		// agents/cascade): a gateway can neither forge nor answer one.
		{"zr.sessions.revoked", false},
		{"zr.agents.revoked", false},
		{"$JS.API.STREAM.LIST", false},
	}
	for _, c := range cases {
		if err := pressNC.Publish(c.subject, []byte("from press")); err != nil {
			t.Fatal(err)
		}
	}
	_ = pressNC.Flush()
	m, err := stateSub.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "zr.twin.press-1.state.ram" {
		t.Fatalf("first state seen by the realm = %v, %v; want the press gateway's own", m, err)
	}
	if m, err := stateSub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("the realm received %s from the press gateway, want it refused", m.Subject)
	}
	for _, c := range cases {
		if c.allowed {
			continue
		}
		t.Run(c.subject, func(t *testing.T) {
			eventually(t, func() bool { return pv.About(`"` + c.subject + `"`) }, "a permissions violation for "+c.subject)
		})
	}
	if !errors.Is(pressNC.LastError(), nats.ErrPermissionViolation) && pressNC.LastError() == nil {
		t.Error("LastError is nil after permission violations")
	}
}

func TestGatewayConfigMistakes(t *testing.T) {
	good := newGatewayCreds(t, "press-1")
	cases := []struct {
		name string
		gws  []GatewayUser
	}{
		{"seed instead of public key", []GatewayUser{{Twin: "press-1", NKey: "SUAxxx"}}},
		{"no twin", []GatewayUser{{NKey: good.user(t).NKey}}},
		{"wildcard twin", []GatewayUser{{Twin: "*", NKey: good.user(t).NKey}}},
		{"same key twice", []GatewayUser{good.user(t), {Twin: "robot-1", NKey: good.user(t).NKey}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if e, err := Start(context.Background(), Config{DataDir: t.TempDir(), Gateways: c.gws}); err == nil {
				e.Shutdown(context.Background())
				t.Fatalf("Start(%+v) succeeded, want an error", c.gws)
			}
		})
	}
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
