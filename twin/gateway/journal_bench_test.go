package gateway_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// BenchmarkHandleJournal is grants verified and carried out by a gateway,
// with its journal in memory (a simulated gateway) or in a file
// (zerorealm gateway): the difference is the journal's cost on the disk
// the test's temporary folder is on. conc-N has N grants in flight at
// once, as N workers would (each its own command, on the press's two
// actuators in turn). It reports the file's syncs per grant and grants a
// second.
func BenchmarkHandleJournal(b *testing.B) {
	for _, where := range []string{"memory", "file"} {
		for _, conc := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%s/conc-%d", where, conc), func(b *testing.B) {
				benchmarkHandleJournal(b, where == "file", conc)
			})
		}
	}
}

func benchmarkHandleJournal(b *testing.B, file bool, conc int) {
	realm, _ := twin.GenerateSigner()
	key, _ := twin.GenerateSigner()
	cfg := gateway.JournalConfig{}
	if file {
		cfg.Path = filepath.Join(b.TempDir(), "j")
	}
	j, err := gateway.OpenJournal(cfg, key)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	g, err := gateway.New(gateway.Config{Twin: "press-1", Actuators: foundry[0].Actuators, RealmKeys: []common.Address{realm.Address()},
		Signer: key, Journal: j, FeedTimeout: time.Hour, Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	g.HandleNotice(realm.SignNotice(twin.RevocationNotice{Seq: 1, At: twin.Millis(time.Now()), Complete: true}).Encode())
	// Grants are signed a round at a time, outside the timer: a grant is
	// valid for 3 s, longer than a round takes.
	const round = 128
	grants := make([][]byte, 0, round)
	syncs0 := gateway.JournalSyncs(j)
	b.ResetTimer()
	for done := 0; done < b.N; done += len(grants) {
		b.StopTimer()
		grants = grants[:0]
		for i := done; i < b.N && i < done+round; i++ {
			grants = append(grants, benchGrant(realm, i))
		}
		b.StartTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := int(next.Add(1)) - 1
					if n >= len(grants) {
						return
					}
					actuator := foundry[0].Actuators[(done+n)%2].ID
					if sa := g.Handle(context.Background(), actuator, grants[n]); sa.Ack.Result != twin.ResultDone {
						b.Errorf("grant %d: %+v", done+n, sa.Ack)
					}
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(gateway.JournalSyncs(j)-syncs0)/float64(b.N), "syncs/grant")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "grants/s")
}

// benchGrant is the i-th grant of the benchmark: a command of its own,
// alternating between the press's ram and its pressure (critical, so
// approved by a second operator), each well inside its envelope.
func benchGrant(realm *twin.Signer, i int) []byte {
	a := foundry[0].Actuators[i%2]
	v := float64(i % 100)
	c, _ := twin.NewCommand("press-1", a.ID, "av_ada", fmt.Sprintf("k%d", i), twin.CommandRequest{Op: twin.OpSet, Value: &v})
	now := time.Now()
	return realm.SignGrant(twin.Grant{Twin: c.Twin, Actuator: c.Actuator, Op: c.Op, ValueMicro: c.ValueMicro, Command: c.Hash(),
		Nonce: uint64(i + 1), NotBefore: twin.Millis(now), Expiry: twin.Millis(now.Add(3 * time.Second)), Operator: c.Operator, Session: "sess-1",
		Approvers: []string{"av_bob"}, Delegations: []string{}}).Encode()
}
