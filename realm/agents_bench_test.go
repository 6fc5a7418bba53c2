package realm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/realm/internal/twins/command"
)

// BenchmarkAgentCost compares the same requests made over HTTP by a person
// (a session) and by an agent (a DPoP proof, its delegation, then the same
// Cedar decision), in one run:
//
//   - access: one scene's access, joining it and entering each of its 6
//     zones, every decision audited;
//   - command: a low-risk twin command, carried out by the simulated
//     gateway and audited (the operator and actuator rate limits lifted,
//     as in BenchmarkGatedCommand).
//
// The agent pays one proof verification per request and, per decision,
// its delegation's check and the counter its limits bind (a command's
// minute; none for joining and entering). cpu-us/op is the process's CPU
// per request (realm, gateways, NATS and client together), which a
// loaded machine disturbs less than the wall-clock ns/op.
//
//	go test -run '^$' -bench BenchmarkAgentCost -benchtime 300x -count 3 ./realm
func BenchmarkAgentCost(b *testing.B) {
	r := benchRealm(b)
	p, token := benchOperator(b, r)
	person := newClient(b, r).With(token)
	// Each run gets an agent of its own: a delegation allows at most 600
	// commands a minute, and a fresh agent has no history to be judged by.
	newBenchAgent := func(actions []string, resources ...agents.Resource) *agentClient {
		key := newAgentKey(b)
		chain := issueDelegationWithin(b, r, p.Avatar.ID, key, actions, resources,
			agents.Limits{CommandsPerMinute: agents.MaxCommandsPerMinute, MaxRisk: agents.RiskMedium}, time.Now().Add(-time.Minute), time.Hour)
		return newAgentClient(b, r.URL(), key, chain)
	}
	foundry := agents.Resource{Kind: agents.KindScene, ID: "foundry"}
	belt := agents.Resource{Kind: agents.KindActuator, ID: "conveyor-1/belt-speed"}
	seq := 0
	value := func() float64 { seq++; return 1 + float64(seq%2)/2 }

	// The agent's proofs are signed before the timer starts, as the
	// person's token is: an agent signs on its own machine, and the
	// measure is the realm's (cpu-us/op counts the whole process).
	presigned := func(b *testing.B, ag *agentClient, method, path string) []string {
		if a := ag.Do("GET", "/v1/agents/me", nil); a.Status != http.StatusOK { // learns the node's nonce
			b.Fatalf("%d %+v", a.Status, a.Problem)
		}
		proofs := make([]string, b.N)
		for i := range proofs {
			proofs[i] = ag.ProofBy(ag.Key, method, path)
		}
		return proofs
	}
	run := func(b *testing.B, one func(i int)) {
		b.ResetTimer()
		cpu := cpuClock()
		for i := range b.N {
			one(i)
		}
		b.StopTimer()
		reportCPU(b, cpu)
	}
	const access = "/v1/scenes/foundry/access"

	b.Run("access/person", func(b *testing.B) {
		run(b, func(int) {
			if code, p := person.Call("GET", access, nil, nil); code != http.StatusOK {
				b.Fatalf("%d %+v", code, p)
			}
		})
	})
	b.Run("access/agent", func(b *testing.B) {
		ag := newBenchAgent([]string{agents.ActionJoinScene, agents.ActionEnterZone}, foundry)
		proofs := presigned(b, ag, "GET", access)
		run(b, func(i int) {
			if a := ag.Send("GET", access, proofs[i]); a.Status != http.StatusOK {
				b.Fatalf("%d %+v", a.Status, a.Problem)
			}
		})
	})
	b.Run("command/person", func(b *testing.B) {
		run(b, func(int) {
			status, p, ans, _ := person.Command(beltPath, fmt.Sprint("p-", seq), map[string]any{"op": "set", "value": value()})
			if status != http.StatusOK || ans.Status != command.StatusDone {
				b.Fatalf("%d %+v %+v", status, p, ans.Ack)
			}
		})
	})
	b.Run("command/agent", func(b *testing.B) {
		ag := newBenchAgent([]string{agents.ActionCommandActuator}, belt)
		proofs := presigned(b, ag, "POST", beltPath)
		run(b, func(i int) {
			body, _ := json.Marshal(map[string]any{"op": "set", "value": value()})
			a := ag.SendBody("POST", beltPath, proofs[i], body, http.Header{"Idempotency-Key": {fmt.Sprint("a-", seq)}})
			var ans command.Answer
			if a.Status != http.StatusOK || json.Unmarshal(a.Body, &ans) != nil || ans.Status != command.StatusDone {
				b.Fatalf("%d %+v %s", a.Status, a.Problem, a.Body)
			}
		})
	})
}
