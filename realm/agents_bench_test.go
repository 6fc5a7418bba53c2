package realm

import (
	"net/http"
	"testing"

	"github.com/zerorealm/zerorealm/agents"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// BenchmarkSceneAccess compares one scene's access decisions asked by a
// person (session) and by an agent (DPoP proof, delegation, then Cedar):
// the agent's overhead at the edge and in the decision.
//
//	go test -run '^$' -bench BenchmarkSceneAccess -benchtime 300x ./realm
func BenchmarkSceneAccess(b *testing.B) {
	r := startRealm(b, Config{Listen: "localhost:0"})
	c := newClient(b, r)
	owner := c.Register(webauthntest.New(), "bench")
	ownerID, _ := owner.Avatar["id"].(string)
	person := c.With(owner.Token)
	b.Run("person", func(b *testing.B) {
		for b.Loop() {
			if code, p := person.Call("GET", "/v1/scenes/foundry/access", nil, nil); code != http.StatusOK {
				b.Fatalf("%d %+v", code, p)
			}
		}
	})
	// The same decisions as the person's: joining and every zone.
	ag, _ := newAgent(b, r, ownerID, []string{agents.ActionJoinScene, agents.ActionEnterZone}, agents.Resource{Kind: agents.KindScene, ID: "foundry"})
	b.Run("agent", func(b *testing.B) {
		for b.Loop() {
			if a := ag.do("GET", "/v1/scenes/foundry/access", nil); a.status != http.StatusOK {
				b.Fatalf("%d %+v", a.status, a.problem)
			}
		}
	})
}
