package clustertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestBootstrapAdminAcrossNodes registers avatars on two realm nodes of one
// cluster at the same moment: exactly one becomes administrator.
func TestBootstrapAdminAcrossNodes(t *testing.T) {
	a, b := nodes.TwoOnCluster(t)
	const perNode = 4
	type finish struct {
		url  string
		body []byte
	}
	var finishes []finish
	for i := range 2 * perNode {
		node := []*realm.Realm{a, b}[i%2]
		c := nodes.Client(t, node)
		c.Origin = a.URL() // both nodes accept node a's origin
		var begin realmtest.Begin
		c.Must("POST", "/v1/webauthn/register/begin", map[string]string{"name": fmt.Sprintf("racer-%d", i), "display_name": "Racer"}, &begin)
		opts, _ := json.Marshal(begin)
		cred, err := webauthntest.New().Register(opts, c.Origin)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"ceremony_id": begin.Ceremony(), "credential": json.RawMessage(cred)})
		finishes = append(finishes, finish{node.URL(), body})
	}
	results := make([]realmtest.Session, len(finishes))
	errs := make([]error, len(finishes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, f := range finishes {
		wg.Go(func() {
			<-start
			resp, err := http.Post(f.url+"/v1/webauthn/register/finish", "application/json", bytes.NewReader(f.body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
				return
			}
			errs[i] = json.NewDecoder(resp.Body).Decode(&results[i])
		})
	}
	close(start)
	wg.Wait()
	var admins []string
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("registration %d: %v", i, errs[i])
		}
		switch roles := res.Roles(); {
		case slices.Equal(roles, []string{"admin", "operator", "supervisor"}):
			admins = append(admins, res.Avatar["id"].(string))
		case !slices.Equal(roles, []string{"visitor"}):
			t.Errorf("registration %d got roles %q", i, roles)
		}
	}
	if len(admins) != 1 {
		t.Fatalf("%d administrators (%v) from %d concurrent registrations on two nodes, want exactly 1", len(admins), admins, len(finishes))
	}
	// The stored roles agree, read through the other node's API.
	var page realmtest.AvatarPage
	for _, res := range results {
		if res.Avatar["id"] == admins[0] {
			for _, node := range []*realm.Realm{a, b} {
				c := nodes.Client(t, node).With(res.Token)
				c.Must("GET", "/v1/avatars", nil, &page)
				if len(page.Avatars) != len(finishes) {
					t.Fatalf("GET /v1/avatars on %s lists %d avatars, want %d", node.Node(), len(page.Avatars), len(finishes))
				}
			}
		}
	}
	admin := 0
	for _, av := range page.Avatars {
		if slices.Contains(av.Roles, "admin") {
			admin++
		}
	}
	if admin != 1 {
		t.Fatalf("%d stored avatars hold admin, want 1", admin)
	}
	realmtest.Eventually(t, "exactly one BootstrapAdmin decision in the audit", func() bool {
		n := 0
		for _, node := range []*realm.Realm{a, b} {
			n += len(realmtest.AuditEvents(t, a, "realm:"+node.Node(), "BootstrapAdmin"))
		}
		return n == 1
	})
}
