package gateway_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
	"github.com/zerorealm/zerorealm/twin/gateway"
)

// BenchmarkHandleJournal is one grant verified and carried out by a
// gateway, with its journal in memory (a simulated gateway) or in a file
// synced twice per command (zerorealm gateway): the difference is the
// journal's cost on the disk the test's temporary folder is on.
func BenchmarkHandleJournal(b *testing.B) {
	for _, where := range []string{"memory", "file"} {
		b.Run(where, func(b *testing.B) {
			realm, _ := twin.GenerateSigner()
			key, _ := twin.GenerateSigner()
			cfg := gateway.JournalConfig{}
			if where == "file" {
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
			b.ResetTimer()
			for i := range b.N {
				// Signed as they go: a grant is valid for 3 s.
				b.StopTimer()
				v := float64(i % 300)
				c, _ := twin.NewCommand("press-1", "ram", "av_ada", fmt.Sprintf("k%d", i), twin.CommandRequest{Op: twin.OpSet, Value: &v})
				grant := grantOf(realm, c, uint64(i+1))
				b.StartTimer()
				if sa := g.Handle(context.Background(), "ram", grant); sa.Ack.Result != twin.ResultDone {
					b.Fatalf("grant %d: %+v", i, sa.Ack)
				}
			}
		})
	}
}
