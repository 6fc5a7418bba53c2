package realm

import (
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
// fungible transfer of 1 gem from the same linked wallet, signed
// beforehand, with its receipt. The agent's transfers stay under its
// auto-approval value, so none waits.
//
//	go test -run '^$' -bench BenchmarkAgentTransfer -benchtime 300x -count 3 ./realm
func BenchmarkAgentTransfer(b *testing.B) {
	r := startMarket(b)
	u := newMarketUser(b, r, "bench")
	ownerID := u.sess.Avatar["id"].(string)
	mint(b, r, "gems", "", u.wallet, 1_000_000)
	scheme := r.market.Ledger().Scheme()
	to := common.HexToAddress("0x00000000000000000000000000000000000000b0")
	nonce := uint64(0)
	signed := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			nonce++
			deadline := uint64(time.Now().Add(time.Hour).Unix())
			in := intent("gems", "", 1, u.wallet, to, nonce, fmt.Sprint(deadline))
			d := scheme.TransferDigest(&assets.Transfer{Collection: "gems", Amount: 1, From: u.wallet, To: to, Nonce: nonce, Deadline: deadline})
			sig, err := assets.Sign(d, u.key)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = map[string]any{"intent": in, "signature": sig.String()}
		}
		return out
	}
	b.Run("person", func(b *testing.B) {
		bodies := signed(b.N)
		b.ResetTimer()
		for i := range b.N {
			if code, p := u.c.call("POST", "/v1/assets/transfers", bodies[i], nil); code != http.StatusCreated {
				b.Fatalf("%d %+v", code, p)
			}
		}
	})
	ag, _ := newTraderWith(b, r, ownerID, agents.Limits{TransferValue: 10, DailyValue: 1 << 40, AutoApproveValue: 10, MaxRisk: agents.RiskLow})
	b.Run("agent", func(b *testing.B) {
		bodies := signed(b.N)
		b.ResetTimer()
		for i := range b.N {
			if a := ag.post("POST", "/v1/assets/transfers", bodies[i], nil); a.status != http.StatusCreated {
				b.Fatalf("%d %s %+v", a.status, a.body, a.problem)
			}
		}
	})
}
