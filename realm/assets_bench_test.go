//go:build unix

package realm

import (
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/zerorealm/zerorealm/assets"
)

// BenchmarkAssetTransfers measures wallet-signed transfers of unique items
// end to end through the HTTP API (session check, signature recovery,
// policy decision with its audit record, nonce and asset compare-and-set
// appends, receipt signing and chain append), and, in the same run, the
// raw rate of the crypto one transfer needs: one recover and one sign.
// cpu-us/transfer is the CPU time the whole process (server, embedded
// NATS, clients) spent per transfer: on a machine shared with other work
// it moves far less than the rate does.
func BenchmarkAssetTransfers(b *testing.B) {
	key, _ := crypto.GenerateKey()
	d := crypto.Keccak256Hash([]byte("x"))
	sig, _ := assets.Sign(d, key)
	b.Run("crypto-recover+sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = assets.Recover(d, sig)
			_, _ = assets.Sign(d, key)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	})

	r := startMarket(b)
	u := newMarketUser(b, r, "bench")
	scheme := r.assets.scheme
	deadline := uint64(time.Now().Add(time.Hour).Unix())
	var nonce uint64
	for _, workers := range []int{16, 64} {
		b.Run(fmt.Sprintf("http/clients=%d", workers), func(b *testing.B) {
			bodies := make([]map[string]any, b.N)
			for i := range bodies {
				item := fmt.Sprintf("b%d-%d", workers, nonce)
				mint(b, r, "relics", item, u.wallet, 0)
				tr := assets.Transfer{Collection: "relics", AssetID: item, Amount: 1, From: u.wallet,
					To: common.BigToAddress(big.NewInt(int64(nonce + 1))), Nonce: nonce, Deadline: deadline}
				nonce++
				s, _ := assets.Sign(scheme.TransferDigest(&tr), u.key)
				bodies[i] = map[string]any{"intent": assets.MessageOf(&tr), "signature": s.String()}
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}, Timeout: 30 * time.Second}
			url := r.URL() + "/v1/assets/transfers"
			next := make(chan int, len(bodies))
			for i := range bodies {
				next <- i
			}
			close(next)
			var failed sync.Map
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						var out transferReply
						if code := postJSON(hc, url, u.sess.Token, bodies[i], &out); code != http.StatusCreated {
							failed.Store(i, code)
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			cpu := processCPU() - cpu0
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/transfer")
			failed.Range(func(k, v any) bool { b.Fatalf("transfer %v answered %v", k, v); return false })
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
