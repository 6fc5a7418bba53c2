//go:build linux

package realm

import (
	"encoding/json"
	"fmt"
	"net/http"
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
// that concurrent transfers do not contend for one balance). The agent's
// transfers stay under its auto-approval value, so none waits; its DPoP
// proofs are signed beforehand too, as the intents are. Eight clients send
// at once, so that neither is measured waiting for the audit log's group
// commit alone. The two sub-benchmarks differ in the caller's headers
// only.
//
// The clients run in a child process (runClientProcess), so that the
// realm's CPU is the realm's. Metrics:
//
//   - realm-cpu-us/transfer: CPU this process (the realm and its embedded
//     NATS) spent per transfer; it moves far less than the rate on a
//     machine shared with other work;
//
//   - client-cpu-us/transfer: CPU the child's HTTP clients spent;
//
//   - transfers/s: end to end, wall clock.
//
//     go test -run '^$' -bench BenchmarkAgentTransfer -benchtime 400x -count 3 ./realm
func BenchmarkAgentTransfer(b *testing.B) {
	r := startMarket(b)
	u := newMarketUser(b, r, "bench")
	ownerID := u.Sess.Avatar["id"].(string)
	scheme := r.market.Ledger().Scheme()
	to := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	nonce := uint64(0)
	// requests are n transfers, signed, each with the caller's headers.
	requests := func(n int, auth func(i int, h http.Header)) []benchRequest {
		out := make([]benchRequest, n)
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
			body, _ := json.Marshal(map[string]any{"intent": intent("relics", item, 1, u.Wallet, to, nonce, fmt.Sprint(deadline)), "signature": sig.String()})
			h := http.Header{"Content-Type": {"application/json"}}
			auth(i, h)
			out[i] = benchRequest{Method: "POST", Path: "/v1/assets/transfers", Header: h, Body: body}
		}
		return out
	}
	run := func(b *testing.B, reqs []benchRequest) {
		res := runClientProcess(b, benchClientJob{URL: r.URL(), Clients: 8, Want: http.StatusCreated, Requests: reqs})
		res.report(b, b.N, "transfer")
	}
	b.Run("person", func(b *testing.B) {
		run(b, requests(b.N, func(_ int, h http.Header) { h.Set("Authorization", "Bearer "+u.Sess.Token) }))
	})
	ag, _ := newTraderWith(b, r, ownerID, agents.Limits{TransferValue: 10, DailyValue: 1 << 40, AutoApproveValue: 10, MaxRisk: agents.RiskLow}, "relics")
	ag.Do("GET", "/v1/agents/me", nil) // the node's DPoP nonce
	b.Run("agent", func(b *testing.B) {
		run(b, requests(b.N, func(_ int, h http.Header) {
			h.Set("Authorization", "DPoP "+ag.Token)
			h.Set("DPoP", ag.ProofBy(ag.Key, "POST", "/v1/assets/transfers"))
		}))
	})
}
