package realm

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/keyfile"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestNodeWithAnotherTemplateKeyRefusesToStart: a node given a template
// key other than the one the cluster's templates are sealed under would
// read none of them and seal new ones no other node can read; it refuses
// to start and says which file to fix.
func TestNodeWithAnotherTemplateKeyRefusesToStart(t *testing.T) {
	srv := natstest.RunServer(t)
	urls := []string{srv.ClientURL()}
	startRealm(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-a"})

	otherKey := filepath.Join(t.TempDir(), "other.key")
	wantRefusedToStart(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", DataDir: t.TempDir(), TemplateKeyFile: otherKey},
		biometrics.ErrKeyMismatch, otherKey)
}

// wantRefusedToStart starts a node as configured (sharing the test's
// cluster key files where cfg names none) and wants its start to fail with
// want, naming file.
func wantRefusedToStart(t *testing.T, cfg Config, want error, file string) {
	t.Helper()
	cfg.Logger = testLogger(t)
	shareClusterKeys(t, &cfg)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx) }()
	select {
	case <-b.Ready():
		t.Fatalf("a node that should refuse to start (%v) started", want)
	case err := <-served:
		if !errors.Is(err, want) || !strings.Contains(err.Error(), file) {
			t.Fatalf("Serve = %v, want %v naming %s", err, want, file)
		}
	case <-ctx.Done():
		t.Fatal("the node neither started nor failed")
	}
}

// TestTemplateKeyRotatesOnARealmNode walks an operator's rotation of the
// template key on a realm node, by its key file alone:
//   - the node seals three templates under its first key, and stops;
//   - its file gets a new key first, the old one kept below: the node
//     starts, knows every template, seals them all again under the new key
//     in the background, and signs its background notes with a new realm
//     key (derived from the new template key);
//   - the old key alone is refused from then on, naming the file;
//   - the new key alone starts, and the node knows every template.
func TestTemplateKeyRotatesOnARealmNode(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, xr.TemplateKeyFile)
	a, stopA := runRealm(t, Config{DataDir: dir, Node: "n1"})
	ring, err := keyfile.LoadRingOrCreate(keyFile, "template key")
	if err != nil || len(ring) != 1 {
		t.Fatalf("the node's key file: %d keys, %v; want the one it made", len(ring), err)
	}
	oldKey := ring[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before, err := biometrics.NewTemplateStore(ctx, a.store, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	people := []string{"person-0", "person-1", "person-2"}
	for i, id := range people {
		ws, err := biometrics.Windows(synth.NewPerson(int64(70+i)).Session(1).Frames(20*72, 72), biometrics.Config{})
		if err != nil {
			t.Fatal(err)
		}
		tm, err := biometrics.NewTemplate(ws, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := before.Put(ctx, id, tm); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the node knows "+id+"'s template", func() bool { return a.xr.KnowsTemplate(id) })
	}
	oldRealmKey := a.BackgroundRealmVerifierKey()
	stopA()

	newKey := bytes.Repeat([]byte{0x5a}, keyfile.Size)
	writeRing := func(keys ...[]byte) {
		t.Helper()
		content := "# the first key seals; the others only open\n"
		for _, k := range keys {
			content += hex.EncodeToString(k) + "\n"
		}
		if err := os.WriteFile(keyFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeRing(newKey, oldKey)
	b, stopB := runRealm(t, Config{DataDir: dir, Node: "n1"})
	for _, id := range people {
		if !b.xr.KnowsTemplate(id) {
			t.Fatalf("after the rotation the node does not know %s's template", id)
		}
	}
	if b.BackgroundRealmVerifierKey() == oldRealmKey {
		t.Error("the realm's background key did not rotate with the template key")
	}
	newOnly, err := biometrics.NewTemplateStore(ctx, b.store, newKey)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "every template sealed again under the new key", func() bool {
		all, skipped, err := newOnly.All(ctx)
		return err == nil && skipped == 0 && len(all) == len(people)
	})
	// What tells the operator the old key may go: the node's pass sealed
	// all three again and left none under it.
	eventually(t, "the reseal's metrics", func() bool {
		resealed, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_templates_resealed{outcome="resealed"}`)
		rewritten, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_templates_resealed{outcome="rewritten"}`)
		retired, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_template_retired_keys`)
		under, _ := realmtest.Metric(t, b.URL(), `zerorealm_xr_templates_under_retired_keys`)
		return resealed == float64(len(people)) && rewritten == 0 && retired == 1 && under == 0
	})
	stopB()

	writeRing(oldKey)
	wantRefusedToStart(t, Config{DataDir: dir, Node: "n1"}, biometrics.ErrKeyRetired, keyFile)

	writeRing(newKey)
	c := startRealm(t, Config{DataDir: dir, Node: "n1"})
	for _, id := range people {
		if !c.xr.KnowsTemplate(id) {
			t.Fatalf("with the new key alone the node does not know %s's template", id)
		}
	}
}
