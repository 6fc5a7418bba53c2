package realm

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestRealmsExchangeBackgroundStatistics: two realms, each on its own
// embedded NATS, configured as an operator would from `zerorealm keys
// export-public`: B pins A's realm key and fetches; A names B's realm key
// a reader. B whitens with the sums of A's enrolled people, which A
// computed from its stored templates, and A's audit log holds the share.
func TestRealmsExchangeBackgroundStatistics(t *testing.T) {
	// B first, to learn the key its ring gives it.
	bDir := t.TempDir()
	b, stopB := runRealm(t, Config{RPID: "b.example", DataDir: bDir, Node: "b1"})
	bKey := b.BackgroundRealmVerifierKey()
	stopB()

	aDir := t.TempDir()
	a := startRealm(t, Config{RPID: "a.example", DataDir: aDir, Node: "a1", Background: BackgroundExchange{Readers: []string{bKey}}})
	key, err := keyfile.LoadOrCreate(filepath.Join(aDir, xr.TemplateKeyFile), "template key")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	templates, err := biometrics.NewTemplateStore(ctx, a.store, key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		ws, err := biometrics.Windows(synth.NewPerson(int64(40+i)).Session(1).Frames(20*72, 72), biometrics.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tm, err := biometrics.NewTemplate(ws, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("person-%d", i)
		if err := templates.Put(ctx, id, tm); err != nil {
			t.Fatal(err)
		}
		eventually(t, "A knows "+id+"'s template", func() bool { return a.xr.KnowsTemplate(id) })
	}

	b = startRealm(t, Config{RPID: "b.example", DataDir: bDir, Node: "b1", Background: BackgroundExchange{
		Peers: []BackgroundPeer{{URL: a.URL(), Keys: []string{a.BackgroundRealmVerifierKey()}}},
	}})
	var got *biometrics.Background
	eventually(t, "B whitens with A's statistics", func() bool {
		got = b.xr.Engine().PeerBackground("a.example")
		return got != nil
	})
	want, err := a.xr.Engine().ShareBackground(0)
	if err != nil {
		t.Fatal(err)
	}
	if got.People != 6 || got.People != want.People {
		t.Fatalf("B whitens with %d people of A's; A shares %d", got.People, want.People)
	}
	for i := range want.SumWithin {
		if d := math.Abs(got.SumWithin[i] - want.SumWithin[i]); d > 1e-9*max(1, math.Abs(want.SumWithin[i])) {
			t.Fatalf("B's within-person sum %d differs from A's by %g", i, d)
		}
	}
	// The gauge is set just after the statistics are taken.
	eventually(t, "B's zerorealm_biometrics_peer_people for a.example to be 6", func() bool {
		return counterValue(metricsText(t, b), `zerorealm_biometrics_peer_people{peer="a.example"}`) == 6
	})
	reader := BackgroundRealmKeyName("b.example")
	eventually(t, "A's audit log holds the share to B's realm key", func() bool {
		for _, ev := range realmtest.AuditEvents(t, a, reader, "ShareBackground") {
			if ev.Outcome == audit.Allow {
				return true
			}
		}
		return false
	})
}
