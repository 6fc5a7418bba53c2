package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
	"github.com/zerorealm/zerorealm/twin/gateway/gatewaytest"
)

// disk watches a journal's syncs on its real file: what each sync made
// durable (what a stop of the machine right after it leaves at least),
// what the file held when each began, and it can hold a sync or fail it
// as a broken disk would.
type disk struct {
	mu      sync.Mutex
	durable []byte   // the file as the last sync that returned left it
	before  [][]byte // the file as each sync found it
	hold    chan struct{}
	entered chan struct{}
	fail    error
}

func watchDisk(j *gateway.Journal) *disk {
	d := &disk{entered: make(chan struct{}, 1)}
	gateway.SetJournalSync(j, d.sync)
	return d
}

func (d *disk) sync(f *os.File) error {
	// Read through the descriptor: the file was renamed into place.
	st, err := f.Stat()
	if err != nil {
		return err
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return err
	}
	d.mu.Lock()
	hold, fail := d.hold, d.fail
	d.hold = nil
	d.before = append(d.before, data)
	d.mu.Unlock()
	if hold != nil {
		d.entered <- struct{}{}
		<-hold
	}
	if fail != nil {
		return fail
	}
	if err := f.Sync(); err != nil {
		return err
	}
	d.mu.Lock()
	d.durable = data
	d.mu.Unlock()
	return nil
}

// holdNext makes the next sync wait until the returned function is called.
func (d *disk) holdNext() (release func()) {
	ch := make(chan struct{})
	d.mu.Lock()
	d.hold = ch
	d.mu.Unlock()
	return func() { close(ch) }
}

func (d *disk) failFrom(err error) {
	d.mu.Lock()
	d.fail = err
	d.mu.Unlock()
}

func (d *disk) durableNow() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.durable
}

// durableDriver checks, each time it is asked to move, that the grant's
// begin is durable: the journal let the gateway act only on a synced
// record.
type durableDriver struct {
	gateway.Driver
	disk  *disk
	moves atomic.Int64
	bad   atomic.Value // string: a move whose begin was not durable
}

func (d *durableDriver) Move(ctx context.Context, target float64) (gateway.Reading, error) {
	d.moves.Add(1)
	commands, _, err := gateway.ReadJournal(d.disk.durableNow())
	if err != nil || !hasRunning(commands) {
		d.bad.Store(fmt.Sprintf("moved to %g with no durable begin without an outcome (%v)", target, err))
	}
	return d.Driver.Move(ctx, target)
}

func hasRunning(commands map[common.Hash]gateway.JournalCommand) bool {
	for _, c := range commands {
		if c.Ack == nil {
			return true
		}
	}
	return false
}

// groupRig is a gateway with a file journal whose first grant's begin is
// held in its sync while the other grants queue behind it: when released,
// they share the next sync.
type groupRig struct {
	path     string
	realm    *twin.Signer
	key      *twin.Signer
	journal  *gateway.Journal
	disk     *disk
	driver   *durableDriver
	gateway  *gateway.Gateway
	commands []twin.Command
	acks     []twin.SignedAck
	syncs0   uint64
	release  func()
	wg       sync.WaitGroup
}

func newGroupRig(t *testing.T, n int) *groupRig {
	t.Helper()
	r := &groupRig{path: filepath.Join(t.TempDir(), "press-1.journal"), acks: make([]twin.SignedAck, n)}
	r.realm, _ = twin.GenerateSigner()
	r.key, _ = twin.GenerateSigner()
	var err error
	if r.journal, err = gateway.OpenJournal(gateway.JournalConfig{Path: r.path}, r.key); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.journal.Close() })
	r.disk = watchDisk(r.journal)
	r.driver = &durableDriver{Driver: gateway.NewSim(foundry[0].Actuators[0], gateway.SimConfig{}), disk: r.disk}
	g := offlineGateway(t, r.realm, r.key, r.journal, r.driver)
	r.gateway = g
	grants := make([][]byte, n)
	for i := range n {
		c := ramCommand(t, float64(10+i), fmt.Sprintf("group-%d", i))
		r.commands = append(r.commands, c)
		grants[i] = grantOf(r.realm, c, uint64(i+1))
	}
	r.syncs0 = gateway.JournalSyncs(r.journal)
	r.release = r.disk.holdNext()
	handle := func(i int) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.acks[i] = g.Handle(context.Background(), "ram", grants[i])
		}()
	}
	handle(0)
	select {
	case <-r.disk.entered: // the first begin is in its sync
	case <-time.After(20 * time.Second):
		r.wg.Wait()
		t.Fatalf("the first grant never reached its sync: %+v", r.acks[0].Ack)
	}
	for i := 1; i < n; i++ {
		handle(i)
	}
	waitUntil(t, "the other grants queue behind the first", func() bool { return gateway.JournalQueued(r.journal) == n-1 })
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestJournalGroupCommit: grants in flight together share the syncs of
// their begins and outcomes, and the driver of each is called only once
// its begin is durable.
func TestJournalGroupCommit(t *testing.T) {
	const n = 5
	r := newGroupRig(t, n)
	r.release()
	r.wg.Wait()
	for i, sa := range r.acks {
		if sa.Ack.Result != twin.ResultDone {
			t.Fatalf("grant %d: %+v", i, sa.Ack)
		}
	}
	if bad := r.driver.bad.Load(); bad != nil {
		t.Fatal(bad)
	}
	if got := r.driver.moves.Load(); got != n {
		t.Fatalf("the driver moved %d times, want %d", got, n)
	}
	// One sync for the first begin, one for the four begins queued behind
	// it, at most one per outcome: one by one it would be two per grant.
	if syncs := gateway.JournalSyncs(r.journal) - r.syncs0; syncs > n+2 {
		t.Fatalf("%d grants took %d syncs, want at most %d", n, syncs, n+2)
	}
	// Every outcome is durable by the time its grant is answered.
	commands, _, err := gateway.ReadJournal(r.disk.durableNow())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range r.commands {
		if jc, ok := commands[c.Hash()]; !ok || jc.Ack == nil || !bytes.Equal(jc.Ack.Encode(), r.acks[i].Encode()) {
			t.Fatalf("grant %d answered before its outcome was durable: %+v", i, jc)
		}
	}
}

// TestJournalSyncErrorFailsTheBatch: a sync that fails fails every grant
// whose begin waited on it (refused, journal_failed, nothing moved), and
// the journal refuses every grant after it, without trying the disk
// again, until it is opened again.
func TestJournalSyncErrorFailsTheBatch(t *testing.T) {
	const n = 5
	r := newGroupRig(t, n)
	r.disk.failFrom(syscall.EIO) // the held sync was already under way: it succeeds
	r.release()
	r.wg.Wait()
	if a := r.acks[0].Ack; a.Result != twin.ResultDone {
		t.Fatalf("the grant synced before the failure: %+v", a)
	}
	for i, sa := range r.acks[1:] {
		if a := sa.Ack; a.Result != twin.ResultRefused || a.Reason != twin.ReasonJournalFailed {
			t.Fatalf("grant %d of the failed batch: %+v, want refused journal_failed", i+1, a)
		}
	}
	if got := r.driver.moves.Load(); got != 1 {
		t.Fatalf("the driver moved %d times, want once: a grant whose begin failed to sync moved", got)
	}

	// Failed closed: the next grant is refused without a sync.
	syncs := gateway.JournalSyncs(r.journal)
	g := offlineGateway(t, r.realm, r.key, r.journal, r.driver)
	next := ramCommand(t, 30, "after-the-failure")
	if a := g.Handle(context.Background(), "ram", grantOf(r.realm, next, 100)).Ack; a.Result != twin.ResultRefused || a.Reason != twin.ReasonJournalFailed {
		t.Fatalf("a grant after the failed sync: %+v, want refused journal_failed", a)
	}
	if gateway.JournalSyncs(r.journal) != syncs || r.driver.moves.Load() != 1 {
		t.Fatal("the broken journal tried the disk again, or the driver moved")
	}

	// Restarted: the file opens; the grant that ran counts as carried
	// out, and a grant of the failed batch whose record reached the disk
	// anyway counts as interrupted (failed, never run again), the safe
	// reading of a begin without an outcome.
	r.journal.Close()
	j, err := gateway.OpenJournal(gateway.JournalConfig{Path: r.path}, r.key)
	if err != nil {
		t.Fatalf("reopen after a failed sync: %v", err)
	}
	defer j.Close()
	if _, ok := j.Executed(r.commands[0].Hash()); !ok {
		t.Fatal("the grant carried out before the failure is forgotten")
	}
	for _, c := range r.commands[1:] {
		if sa, ok := j.Executed(c.Hash()); ok && sa.Ack.Result != twin.ResultFailed {
			t.Fatalf("a grant of the failed batch reads as %+v after a restart", sa.Ack)
		}
	}
}

// TestJournalTornBatch: a stop while a batch is written leaves its first
// records whole and one torn: at restart the whole ones count (begun,
// never finished: carried out and failed) and the torn one and those
// after it do not, so their commands run when granted again.
func TestJournalTornBatch(t *testing.T) {
	const n = 5
	r := newGroupRig(t, n)
	r.release()
	r.wg.Wait()
	// The file as the first sync left it, and as the second found it: the
	// second batch holds the begins of the four grants queued behind the
	// first.
	if len(r.disk.before) < 2 {
		t.Fatalf("%d syncs", len(r.disk.before))
	}
	first, second := r.disk.before[0], r.disk.before[1]
	if !bytes.HasPrefix(second, first) {
		t.Fatal("the second batch did not follow the first in the file")
	}
	batch := second[len(first):]
	lines := bytes.SplitAfter(batch, []byte("\n"))
	if len(lines) < 4 {
		t.Fatalf("the second batch holds %d records, want the 4 begins queued together", len(lines))
	}
	whole := len(lines[0]) + len(lines[1])
	torn := append(append([]byte{}, first...), batch[:whole+len(lines[2])/2]...)
	path := filepath.Join(filepath.Dir(r.path), "torn.journal")
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := gateway.OpenJournal(gateway.JournalConfig{Path: path}, r.key)
	if err != nil {
		t.Fatalf("a batch torn in its third record: %v", err)
	}
	defer j.Close()
	counted := map[common.Hash]bool{}
	for _, l := range lines[:2] {
		counted[beginOf(t, l)] = true
	}
	sim := gateway.NewSim(foundry[0].Actuators[0], gateway.SimConfig{})
	g := offlineGateway(t, r.realm, r.key, j, sim)
	for i, c := range r.commands {
		a := g.Handle(context.Background(), "ram", grantOf(r.realm, c, uint64(200+i))).Ack
		switch {
		case i == 0 || counted[c.Hash()]:
			// Begun in a whole record: never carried out again.
			if a.Result != twin.ResultFailed || a.Nonce != uint64(i+1) {
				t.Fatalf("command %d, begun in a whole record: %+v, want failed for its first nonce", i, a)
			}
		default:
			if a.Result != twin.ResultDone || a.Nonce != uint64(200+i) {
				t.Fatalf("command %d, torn or never written: %+v, want carried out now", i, a)
			}
		}
	}
}

func beginOf(t *testing.T, line []byte) common.Hash {
	t.Helper()
	var l struct {
		Begin *struct {
			Command common.Hash `json:"command"`
		} `json:"begin"`
	}
	if err := json.Unmarshal(line, &l); err != nil || l.Begin == nil {
		t.Fatalf("%s is not a begin: %v", line, err)
	}
	return l.Begin.Command
}

// TestJournalClosedRefuses: after Close nothing is recorded, and a grant
// is refused rather than acted on unrecorded.
func TestJournalClosedRefuses(t *testing.T) {
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	j, err := gateway.OpenJournal(gateway.JournalConfig{Path: filepath.Join(t.TempDir(), "j")}, key)
	if err != nil {
		t.Fatal(err)
	}
	g := offlineGateway(t, realm, key, j, nil)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	a := g.Handle(context.Background(), "ram", grantOf(realm, ramCommand(t, 10, "closed"), 1)).Ack
	if a.Result != twin.ResultRefused || a.Reason != twin.ReasonJournalFailed {
		t.Fatalf("a grant after Close: %+v", a)
	}
	if err := j.Close(); err != nil && !errors.Is(err, gateway.ErrJournal) {
		t.Fatalf("a second Close: %v", err)
	}
}

// TestEmergencyStopDuringTheBeginsSync engages the emergency stop while a
// grant, its checks passed, waits for its begin's sync: the grant is
// refused when the sync returns, nothing moves, and the journal says it
// was refused, not carried out.
func TestEmergencyStopDuringTheBeginsSync(t *testing.T) {
	r := newGroupRig(t, 1)
	r.gateway.EmergencyStop(context.Background(), true)
	r.release()
	r.wg.Wait()
	if a := r.acks[0].Ack; a.Result != twin.ResultRefused || a.Reason != twin.ReasonEmergencyStop {
		t.Fatalf("a grant whose begin was syncing when the stop was engaged: %+v, want refused emergency_stop", a)
	}
	if got := r.driver.moves.Load(); got != 0 {
		t.Fatalf("the driver moved %d times under the emergency stop", got)
	}
	if _, ok := r.journal.Executed(r.commands[0].Hash()); ok {
		t.Fatal("the journal counts the refused grant as carried out")
	}
	commands, _, err := gateway.ReadJournal(r.disk.durableNow())
	if jc := commands[r.commands[0].Hash()]; err != nil || jc.Ack == nil || jc.Ack.Ack.Reason != twin.ReasonEmergencyStop {
		t.Fatalf("the journal's file holds %+v (%v), want the refusal", jc, err)
	}
}

// TestGrantsOfOneActuatorTakeTurns: while one grant's driver call holds
// the ram, a second grant of the ram waits for its turn, and one whose
// caller gives up meanwhile (the gateway stopping) is acknowledged
// failed without reaching the driver, and never runs afterwards.
func TestGrantsOfOneActuatorTakeTurns(t *testing.T) {
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	j, err := gateway.OpenJournal(gateway.JournalConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := gatewaytest.NewHeld(foundry[0].Actuators[0])
	g := offlineGateway(t, realm, key, j, held)
	var first twin.SignedAck
	done := make(chan struct{})
	go func() {
		defer close(done)
		first = g.Handle(context.Background(), "ram", grantOf(realm, ramCommand(t, 40, "first"), 1))
	}()
	waitUntil(t, "the first grant reaches its driver", func() bool { return held.Moves() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := ramCommand(t, 20, "second")
	if a := g.Handle(ctx, "ram", grantOf(realm, second, 2)).Ack; a.Result != twin.ResultFailed || a.Reason != twin.ReasonDriverFailed {
		t.Fatalf("a grant that gave up waiting for the ram: %+v, want failed", a)
	}
	if held.Moves() != 1 {
		t.Fatal("a second grant reached the ram's driver while the first held it")
	}
	held.Release()
	<-done
	if first.Ack.Result != twin.ResultDone {
		t.Fatalf("the first grant: %+v", first.Ack)
	}
	if a := g.Handle(context.Background(), "ram", grantOf(realm, second, 3)).Ack; a.Result != twin.ResultFailed || a.Nonce != 2 || held.Moves() != 1 {
		t.Fatalf("the given-up command granted again: %+v (moves %d), want its failed acknowledgement and no move", a, held.Moves())
	}
}
