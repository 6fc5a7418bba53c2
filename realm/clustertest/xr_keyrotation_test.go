package clustertest

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/clients/vr"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestTemplateKeyRotationAcrossRealmNodes rolls a rotation of the template
// key through two realm nodes on a 3-node NATS cluster, as
// docs/security.md tells an operator to, with avatars enrolling through
// either node at every step:
//   - step 1 done (both files hold the old key, then the new one), an
//     avatar enrolls through A under the old key;
//   - A restarts with the new key first: it rotates the cluster, seals the
//     avatar's template again, and a second avatar enrolls through it
//     under the new key, which B, not yet restarted, learns from the
//     store's feed: B opens what the new key sealed;
//   - a third avatar enrolls through B, still sealing under the old key,
//     and A learns it: A opens what the retired key sealed; motion
//     streamed through B and replayed through A is caught: A looks its
//     windows up under the retired key too;
//   - B restarts with the new key first and seals the third template
//     again;
//   - both restart with the new key alone, and each knows all three.
func TestTemplateKeyRotationAcrossRealmNodes(t *testing.T) {
	t.Parallel()
	_, urls := nodes.Cluster(t)
	oldKey, newKey := bytes.Repeat([]byte{0x0d}, keyfile.Size), bytes.Repeat([]byte{0x2e}, keyfile.Size)
	keys := t.TempDir()
	writeRing := func(file string, ring ...[]byte) string {
		t.Helper()
		var content string
		for _, k := range ring {
			content += hex.EncodeToString(k) + "\n"
		}
		path := filepath.Join(keys, file)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	run := func(name, dir, keyFile string) (*realm.Realm, func()) {
		return nodes.Run(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: name, DataDir: dir,
			TemplateKeyFile: keyFile, XREnrollment: 4 * time.Second})
	}
	a, stopA := run("realm-a", dirA, writeRing("a.key", oldKey, newKey))
	b, stopB := run("realm-b", dirB, writeRing("b.key", oldKey, newKey))

	// enroll registers an avatar through A (the cluster's sessions serve
	// every node) and streams it through r until r holds its template.
	enroll := func(r *realm.Realm, name string, seed int64) string {
		t.Helper()
		sess := nodes.Client(t, a).Register(webauthntest.New(), name)
		id := sess.Avatar["id"].(string)
		cl := dialWS(t, r, sess.Token, vr.Config{})
		w := realmtest.Wear(cl, seed)
		realmtest.EventuallyWithin(t, name+" enrolled through "+r.Node(), 30*time.Second, func() bool {
			return realmtest.Probe(r).XR.KnowsTemplate(id)
		})
		w.TakeOff()
		cl.Close()
		return id
	}
	knows := func(r *realm.Realm, what string, ids ...string) {
		t.Helper()
		realmtest.EventuallyWithin(t, r.Node()+" knows "+what, 20*time.Second, func() bool {
			for _, id := range ids {
				if !realmtest.Probe(r).XR.KnowsTemplate(id) {
					return false
				}
			}
			return true
		})
	}
	resealed := func(r *realm.Realm, want float64) {
		t.Helper()
		realmtest.EventuallyWithin(t, r.Node()+" seals the templates under the old key again", 20*time.Second, func() bool {
			n, _ := realmtest.Metric(t, r.URL(), `zerorealm_xr_templates_resealed{outcome="resealed"}`)
			return n == want
		})
	}

	first := enroll(a, "first", 41)
	knows(b, "the first template, sealed under the old key", first)

	stopA()
	a, stopA = run("realm-a", dirA, writeRing("a.key", newKey, oldKey))
	resealed(a, 1)
	second := enroll(a, "second", 42)
	knows(b, "the second template, sealed under the new key by the rotated node", second)

	third := enroll(b, "third", 43)
	knows(a, "the third template, sealed under the retired key by the node not yet restarted", third)

	// Motion streamed through B, whose path cells are still hashed and
	// sealed under the old key, replayed through the rotated A: caught,
	// because A looks its windows up under the retired key too.
	recording := recordVictim(t, b, webauthntest.New(), 44)
	realmtest.EventuallyWithin(t, "node A takes in the path cells node B shared under the old key", 30*time.Second, func() bool {
		sent, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_path_cells_total{outcome="sent"}`)
		received, _ := realmtest.Metric(t, a.URL(), `zerorealm_xr_path_cells_total{outcome="received"}`)
		return sent > 0 && received >= sent
	})
	attacker := nodes.Client(t, a).Register(webauthntest.New(), "attacker")
	clAttacker, onAttacker := streamVerdicts(t, a, attacker.Token)
	frames, shift := recording.Frames()
	replay := realmtest.Replay(clAttacker, frames, shift)
	realmtest.EventuallyWithin(t, "the replay through the rotated node is caught", 60*time.Second, onAttacker.caughtReplaying)
	replay.TakeOff()
	clAttacker.Close()

	// A has read what B sealed under the old key since: the third
	// template and the victim's, still to be sealed again.
	realmtest.EventuallyWithin(t, "node A counts the templates B sealed under the old key", 20*time.Second, func() bool {
		under, _ := realmtest.Metric(t, a.URL(), `zerorealm_xr_templates_under_retired_keys`)
		return under == 2
	})
	stopB()
	b, stopB = run("realm-b", dirB, writeRing("b.key", newKey, oldKey))
	resealed(b, 2) // the third and the victim's; the first was sealed again by A
	knows(b, "every template", first, second, third)
	// What says the old key may go: neither node reads a template under
	// it any more, A having read B's reseal through the store's feed.
	for _, r := range []*realm.Realm{a, b} {
		realmtest.EventuallyWithin(t, r.Node()+" reads no template under the retired key", 20*time.Second, func() bool {
			under, ok := realmtest.Metric(t, r.URL(), `zerorealm_xr_templates_under_retired_keys`)
			return ok && under == 0
		})
	}

	stopA()
	stopB()
	a, _ = run("realm-a", dirA, writeRing("a.key", newKey))
	b, _ = run("realm-b", dirB, writeRing("b.key", newKey))
	knows(a, "every template under the new key alone", first, second, third)
	knows(b, "every template under the new key alone", first, second, third)
}
