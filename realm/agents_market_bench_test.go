//go:build linux

package realm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/assets"
)

// BenchmarkAgentTransfer compares one transfer over HTTP made by a person
// (session) and by an agent (DPoP proof, delegation, Cedar with
// context.agent, the delegation's limits spent), in one run: the same
// transfer of a unique item from the same linked wallet, signed
// beforehand, with its receipt (as BenchmarkAssetTransfers: items, so
// that concurrent transfers do not contend for one balance). The agent's transfers stay under its
// auto-approval value, so none waits; its DPoP proofs are signed
// beforehand too, as the intents are, so that the client's cost is the
// same for both. Eight clients send at once, so that neither is measured
// waiting for the audit log's group commit alone. Metrics:
//
//   - transfers/s: end to end, wall clock;
//
//   - cpu-us/transfer: CPU the whole process (realm, embedded NATS and the
//     clients) spent per transfer: it moves far less than the rate on a
//     machine shared with other work.
//
//     go test -run '^$' -bench BenchmarkAgentTransfer -benchtime 400x -count 3 ./realm
func BenchmarkAgentTransfer(b *testing.B) {
	r := startMarket(b)
	u := newMarketUser(b, r, "bench")
	ownerID := u.Sess.Avatar["id"].(string)
	scheme := r.market.Ledger().Scheme()
	to := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	nonce := uint64(0)
	signed := func(n int) [][]byte {
		out := make([][]byte, n)
		deadline := uint64(time.Now().Add(time.Hour).Unix())
		for i := range out {
			nonce++
			item := fmt.Sprintf("bench-%d", nonce)
			mint(b, r, "relics", item, u.Wallet, 0)
			tr := assets.Transfer{Collection: "relics", AssetID: item, Amount: 1, From: u.Wallet, To: to, Nonce: nonce, Deadline: deadline}
			sig, err := assets.Sign(scheme.TransferDigest(&tr), u.Key)
			if err != nil {
				b.Fatal(err)
			}
			out[i], _ = json.Marshal(map[string]any{"intent": intent("relics", item, 1, u.Wallet, to, nonce, fmt.Sprint(deadline)), "signature": sig.String()})
		}
		return out
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	run := func(b *testing.B, bodies [][]byte, auth func(i int, h http.Header)) {
		var next atomic.Int64
		var wg sync.WaitGroup
		cpu0 := processCPU()
		b.ResetTimer()
		for range 8 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(bodies) {
						return
					}
					req, _ := http.NewRequest("POST", r.URL()+"/v1/assets/transfers", bytes.NewReader(bodies[i]))
					req.Header.Set("Content-Type", "application/json")
					auth(i, req.Header)
					resp, err := hc.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("transfer %d: %d %s", i, resp.StatusCode, body)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/transfer")
	}
	b.Run("person", func(b *testing.B) {
		bodies := signed(b.N)
		run(b, bodies, func(_ int, h http.Header) { h.Set("Authorization", "Bearer "+u.Sess.Token) })
	})
	ag, _ := newTraderWith(b, r, ownerID, agents.Limits{TransferValue: 10, DailyValue: 1 << 40, AutoApproveValue: 10, MaxRisk: agents.RiskLow}, "relics")
	ag.Do("GET", "/v1/agents/me", nil) // the node's DPoP nonce
	b.Run("agent", func(b *testing.B) {
		bodies := signed(b.N)
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i] = ag.ProofBy(ag.Key, "POST", "/v1/assets/transfers")
		}
		run(b, bodies, func(i int, h http.Header) {
			h.Set("Authorization", "DPoP "+ag.Token)
			h.Set("DPoP", proofs[i])
		})
	})
}
