package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// TestRepeatedCommandIsCarriedOutOnce sends a second grant of a command
// the gateway carried out (a node that lost the answer, a client that sent
// the command again): the gateway answers with the first acknowledgement
// and the actuator does not move again.
func TestRepeatedCommandIsCarriedOutOnce(t *testing.T) {
	b := newBench(t, benchOptions{})
	ctx := context.Background()
	c := b.command("press-1", "ram", 40, "once")
	first, err := b.disp.Deliver(ctx, b.disp.Grant(c, "sess-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.disp.Deliver(ctx, b.disp.Grant(c, "sess-1", nil))
	if err != nil {
		t.Fatalf("second grant of the command: %v, want its first acknowledgement", err)
	}
	if !bytes.Equal(again.Encode(), first.Encode()) {
		t.Fatalf("second grant answered %s, want the first acknowledgement %s", again.Encode(), first.Encode())
	}
	if got := b.gateways["press-1"].Accepted(); got != 1 {
		t.Fatalf("Accepted() = %d, want 1: the command ran twice", got)
	}
}

// offlineGateway is a gateway without NATS, fed a fresh revocation notice
// by hand, with the journal at path.
func offlineGateway(t *testing.T, realm, key *twin.Signer, journal *gateway.Journal, d gateway.Driver) *gateway.Gateway {
	t.Helper()
	press := foundry[0]
	cfg := gateway.Config{Twin: press.ID, Actuators: press.Actuators, RealmKeys: []common.Address{realm.Address()}, Signer: key, Journal: journal, Logger: discard()}
	if d != nil {
		cfg.Drivers = map[string]gateway.Driver{"ram": d}
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.HandleNotice(realm.SignNotice(twin.RevocationNotice{Seq: 1, At: twin.Millis(time.Now()), Complete: true}).Encode())
	return g
}

func grantOf(realm *twin.Signer, c twin.Command, nonce uint64) []byte {
	now := time.Now()
	return realm.SignGrant(twin.Grant{Twin: c.Twin, Actuator: c.Actuator, Op: c.Op, ValueMicro: c.ValueMicro, Command: c.Hash(),
		Nonce: nonce, NotBefore: twin.Millis(now), Expiry: twin.Millis(now.Add(3 * time.Second)), Operator: c.Operator, Session: "sess-1",
		Approvers: []string{}, Delegations: []string{}}).Encode()
}

func ramCommand(t *testing.T, value float64, key string) twin.Command {
	t.Helper()
	c, err := twin.NewCommand("press-1", "ram", "av_ada", key, twin.CommandRequest{Op: twin.OpSet, Value: &value})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// crashingDriver copies the journal file when the driver is called: the
// disk as a gateway that stops while its actuator moves leaves it.
type crashingDriver struct {
	gateway.Driver
	journal, snapshot string
}

func (d *crashingDriver) Move(ctx context.Context, target float64) (gateway.Reading, error) {
	data, err := os.ReadFile(d.journal)
	if err == nil {
		err = os.WriteFile(d.snapshot, data, 0o600)
	}
	if err != nil {
		return gateway.Reading{}, err
	}
	return d.Driver.Move(ctx, target)
}

// TestJournalHoldsAcrossRestarts restarts a gateway with its journal
// file: a command carried out before the restart is answered with its
// acknowledgement and not carried out again, and one whose driver call
// the stop interrupted counts as carried out and failed.
func TestJournalHoldsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "press-1.journal")
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	ram := foundry[0].Actuators[0]

	j1, err := gateway.OpenJournal(gateway.JournalConfig{Path: path}, key)
	if err != nil {
		t.Fatal(err)
	}
	crash := &crashingDriver{Driver: gateway.NewSim(ram, gateway.SimConfig{}), journal: path, snapshot: filepath.Join(dir, "crashed.journal")}
	g1 := offlineGateway(t, realm, key, j1, crash)
	done := ramCommand(t, 40, "before-restart")
	first := g1.Handle(context.Background(), "ram", grantOf(realm, done, 1))
	if first.Ack.Result != twin.ResultDone {
		t.Fatalf("first grant: %+v", first.Ack)
	}
	if err := j1.Close(); err != nil {
		t.Fatal(err)
	}

	// Restarted: a new grant of the same command is not carried out.
	j2, err := gateway.OpenJournal(gateway.JournalConfig{Path: path}, key)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	sim := gateway.NewSim(ram, gateway.SimConfig{})
	g2 := offlineGateway(t, realm, key, j2, sim)
	again := g2.Handle(context.Background(), "ram", grantOf(realm, done, 2))
	if !bytes.Equal(again.Encode(), first.Encode()) {
		t.Fatalf("after a restart the command was answered %s, want its first acknowledgement %s", again.Encode(), first.Encode())
	}
	if g2.Accepted() != 0 || sim.Read().Target != 0 {
		t.Fatalf("after a restart the command ran again: accepted %d, target %g", g2.Accepted(), sim.Read().Target)
	}
	// A new command still runs.
	if sa := g2.Handle(context.Background(), "ram", grantOf(realm, ramCommand(t, 20, "after-restart"), 3)); sa.Ack.Result != twin.ResultDone {
		t.Fatalf("a new command after the restart: %+v", sa.Ack)
	}

	// The disk as it was while the driver of "before-restart" ran: begun,
	// no outcome.
	j3, err := gateway.OpenJournal(gateway.JournalConfig{Path: crash.snapshot}, key)
	if err != nil {
		t.Fatal(err)
	}
	defer j3.Close()
	sim3 := gateway.NewSim(ram, gateway.SimConfig{})
	g3 := offlineGateway(t, realm, key, j3, sim3)
	interrupted := g3.Handle(context.Background(), "ram", grantOf(realm, done, 4))
	if a := interrupted.Ack; a.Result != twin.ResultFailed || a.Reason != twin.ReasonDriverFailed || a.Nonce != 1 {
		t.Fatalf("a command whose driver call a stop interrupted: %+v, want failed for nonce 1", a)
	}
	if sim3.Read().Target != 0 {
		t.Fatal("a command whose driver call a stop interrupted ran again")
	}
	recovered, _, err := gateway.ReadJournal(mustRead(t, crash.snapshot))
	if rc := recovered[done.Hash()]; err != nil || rc.Ack == nil || rc.Ack.Ack.Result != twin.ResultFailed || !rc.CarriedOut() {
		t.Fatalf("ReadJournal of the recovered file: %+v, %v", recovered, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestJournalFileDamage: a last line torn by a stop is dropped; a damaged
// line anywhere else refuses to open, with the line's number.
func TestJournalFileDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j")
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	j, err := gateway.OpenJournal(gateway.JournalConfig{Path: path}, key)
	if err != nil {
		t.Fatal(err)
	}
	g := offlineGateway(t, realm, key, j, nil)
	c := ramCommand(t, 10, "k")
	g.Handle(context.Background(), "ram", grantOf(realm, c, 1))
	j.Close()
	good := mustRead(t, path)

	torn := append(append([]byte{}, good...), `{"begin":{"twin":"press-1","act`...)
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err = gateway.OpenJournal(gateway.JournalConfig{Path: path}, key)
	if err != nil {
		t.Fatalf("a torn last line: %v", err)
	}
	if _, ok := j.Executed(c.Hash()); !ok {
		t.Fatal("the command before the torn line was forgotten")
	}
	j.Close()

	lines := strings.SplitAfter(string(good), "\n")
	lines[1] = `{"begin":{"twin":"press-1"}, "x":1}` + "\n"
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.OpenJournal(gateway.JournalConfig{Path: path}, key); !errors.Is(err, gateway.ErrJournal) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a damaged line: %v, want ErrJournal naming line 2", err)
	}
}

// TestStatusQuery asks the gateway, over NATS, about grants it carried
// out, refused, never saw, and can no longer see; a query the gateway
// does not trust is denied, and another twin's gateway may not ask at all.
func TestStatusQuery(t *testing.T) {
	b := newBench(t, benchOptions{})
	ctx := context.Background()
	done := b.disp.Grant(b.command("press-1", "ram", 40, "done"), "sess-1", nil)
	ack, err := b.disp.Deliver(ctx, done)
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.disp.Status(ctx, &done.Grant)
	if err != nil || st.Status.State != twin.StateExecuted || !bytes.Equal(st.Ack.Encode(), ack.Encode()) {
		t.Fatalf("status of a command carried out: %+v, %v; want executed with its acknowledgement", st.Status, err)
	}

	// Refused by the local emergency stop.
	b.gateways["press-1"].EmergencyStop(ctx, true)
	far := b.disp.Grant(b.command("press-1", "ram", 60, "stopped"), "sess-1", nil)
	if _, err := b.disp.Deliver(ctx, far); twin.ReasonOf(err) != twin.ReasonEmergencyStop {
		t.Fatalf("command under an emergency stop: %v", err)
	}
	b.gateways["press-1"].EmergencyStop(ctx, false)
	if st, err := b.disp.Status(ctx, &far.Grant); err != nil || st.Status.State != twin.StateRefused || st.Ack.Ack.Reason != twin.ReasonEmergencyStop {
		t.Fatalf("status of a refused grant: %+v, %v", st.Status, err)
	}

	// Never delivered: unknown while the grant may still arrive, not
	// executed once it has expired on the gateway's clock.
	// (Signed to start a second from now: the journal began when the
	// gateway started, moments ago, and covers only grants that could not
	// have begun before it, given the clocks' skew.)
	lg := b.disp.Grant(b.command("press-1", "ram", 30, "lost"), "sess-1", nil).Grant
	lg.NotBefore, lg.Expiry = lg.NotBefore+1000, lg.Expiry+1000
	lost := b.realm.SignGrant(lg)
	if st, err := b.disp.Status(ctx, &lost.Grant); err != nil || st.Status.State != twin.StateUnknown {
		t.Fatalf("status of an unexpired grant never seen: %+v, %v", st.Status, err)
	}
	b.clock.Advance(twin.MaxGrantLifetime + time.Second)
	if st, err := b.disp.Status(ctx, &lost.Grant); err != nil || st.Status.State != twin.StateNotExecuted {
		t.Fatalf("status of an expired grant never seen: %+v, %v", st.Status, err)
	}
	// ...and it cannot be carried out any more.
	if sa := b.request("press-1", "ram", lost.Encode()); sa.Ack.Result != twin.ResultRefused {
		t.Fatalf("the grant found not executed ran: %+v", sa.Ack)
	}

	// A query signed by a key the gateway does not trust.
	stranger, _ := twin.GenerateSigner()
	q := twin.StatusQuery{Twin: "press-1", Command: done.Grant.Command, Nonce: done.Grant.Nonce, NotBefore: done.Grant.NotBefore, Expiry: done.Grant.Expiry, Query: 7, At: twin.Millis(time.Now())}
	m, err := b.emb.Conn().Request(twin.StatusSubject(prefix, "press-1"), stranger.SignStatusQuery(q).Encode(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	denied, err := twin.DecodeSignedStatus(m.Data)
	if err != nil || denied.Status.State != twin.StateDenied || denied.Ack != nil || !strings.Contains(denied.Status.Reason, "trust") {
		t.Fatalf("a query by an untrusted key: %+v, %v; want denied with the reason and no acknowledgement", denied, err)
	}

	// Another twin's gateway may not publish to press-1's status subject:
	// its request never reaches the gateway.
	robot := b.conns["robot-1"]
	if _, err := robot.Request(twin.StatusSubject(prefix, "press-1"), b.realm.SignStatusQuery(q).Encode(), 500*time.Millisecond); err == nil {
		t.Fatal("robot-1's gateway asked press-1's gateway for a command's status")
	}
}

// FuzzReadJournal: a journal file of any content opens or is refused with
// ErrJournal, and never panics.
func FuzzReadJournal(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "j")
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	j, err := gateway.OpenJournal(gateway.JournalConfig{Path: path}, key)
	if err != nil {
		f.Fatal(err)
	}
	g, _ := gateway.New(gateway.Config{Twin: "press-1", Actuators: foundry[0].Actuators, RealmKeys: []common.Address{realm.Address()}, Signer: key, Journal: j})
	g.HandleNotice(realm.SignNotice(twin.RevocationNotice{Seq: 1, At: twin.Millis(time.Now()), Complete: true}).Encode())
	v := 10.0
	c, _ := twin.NewCommand("press-1", "ram", "av_ada", "k", twin.CommandRequest{Op: twin.OpSet, Value: &v})
	g.Handle(context.Background(), "ram", grantOf(realm, c, 1))
	j.Close()
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add([]byte(`{"since":1}` + "\n" + `{"end":{"command":"0x00","nonce":1,"ack":{}}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		commands, _, err := gateway.ReadJournal(data)
		if err != nil {
			if !errors.Is(err, gateway.ErrJournal) {
				t.Fatalf("ReadJournal(%q) = %v, want ErrJournal", data, err)
			}
			return
		}
		for c, jc := range commands {
			if jc.Ack != nil && (jc.Ack.Ack.Command != c || jc.Ack.Ack.Nonce != jc.Nonce) {
				t.Fatalf("ReadJournal(%q): command %s has the acknowledgement of %s", data, c.Hex(), jc.Ack.Ack.Command.Hex())
			}
		}
	})
}

// TestJournalIsBounded: past MaxEntries the oldest command whose grant
// has expired is forgotten, and the horizon moves past it, so that the
// journal never claims to know a command it forgot.
func TestJournalIsBounded(t *testing.T) {
	clock := &testClock{}
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	j, err := gateway.OpenJournal(gateway.JournalConfig{MaxEntries: 2, Now: clock.Now}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Twin: "press-1", Actuators: foundry[0].Actuators, RealmKeys: []common.Address{realm.Address()},
		Signer: key, Journal: j, Now: clock.Now, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	var commands []twin.Command
	start := clock.Now()
	for i := range 3 {
		now := clock.Now()
		g.HandleNotice(realm.SignNotice(twin.RevocationNotice{Seq: uint64(i + 1), At: twin.Millis(now), Complete: true}).Encode())
		c := ramCommand(t, float64(10*(i+1)), fmt.Sprintf("k%d", i))
		gr := twin.Grant{Twin: c.Twin, Actuator: c.Actuator, Op: c.Op, ValueMicro: c.ValueMicro, Command: c.Hash(), Nonce: uint64(i + 1),
			NotBefore: twin.Millis(now), Expiry: twin.Millis(now.Add(3 * time.Second)), Operator: c.Operator, Session: "s", Approvers: []string{}, Delegations: []string{}}
		if sa := g.Handle(context.Background(), "ram", realm.SignGrant(gr).Encode()); sa.Ack.Result != twin.ResultDone {
			t.Fatalf("command %d: %+v", i, sa.Ack)
		}
		commands = append(commands, c)
		clock.Advance(5 * time.Second)
	}
	if _, ok := j.Executed(commands[0].Hash()); ok {
		t.Fatal("the oldest command is still remembered past MaxEntries")
	}
	for _, c := range commands[1:] {
		if _, ok := j.Executed(c.Hash()); !ok {
			t.Fatalf("command %s was forgotten too early", c.Key)
		}
	}
	if since := twin.FromMillis(j.Since()); !since.After(start) {
		t.Fatalf("the horizon %s did not move past the forgotten command", since)
	}
}
