package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/realm"
)

// TestAuditVerifyOffline runs a realm, keeps a checkpoint as a client
// would, stops the realm and verifies its audit log offline from the data
// directory: intact, then after an attacker purged the node's chain.
func TestAuditVerifyOffline(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--listen", "127.0.0.1:0", "--nats-listen", "", "--log-level", "warn"}
	url, node, stop := startRealm(t, args)
	var cps struct {
		Checkpoints []json.RawMessage `json:"checkpoints"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for getJSON(t, url+"/v1/audit/checkpoints?node="+node, &cps) != http.StatusOK || len(cps.Checkpoints) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the node published no checkpoint")
		}
		time.Sleep(50 * time.Millisecond)
		cps.Checkpoints = nil
	}
	// The embedded store is the running node's: verify refuses to open it.
	if code := run(context.Background(), []string{"audit", "verify", "--data", data}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("audit verify of a running node's data directory = %d, want %d", code, exitUsage)
	}
	kept := filepath.Join(t.TempDir(), "kept.json")
	if err := os.WriteFile(kept, cps.Checkpoints[0], 0o600); err != nil {
		t.Fatal(err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit status after stop = %d", code)
	}
	// The key ring names the checkpoint key the node signed with.
	var served struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(cps.Checkpoints[0], &served); err != nil {
		t.Fatal(err)
	}
	var pubOut bytes.Buffer
	if code := run(context.Background(), []string{"keys", "export-public", "--data", data}, &pubOut, &bytes.Buffer{}); code != 0 {
		t.Fatalf("keys export-public = %d", code)
	}
	var pub struct {
		BackgroundRealmKey string `json:"background_realm_key"`
		Keys               []struct {
			Active        bool   `json:"active"`
			CheckpointKey string `json:"checkpoint_key"`
			BackgroundKey string `json:"background_key"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(pubOut.Bytes(), &pub); err != nil || len(pub.Keys) != 1 || !pub.Keys[0].Active || pub.Keys[0].CheckpointKey != served.Key {
		t.Fatalf("keys export-public = %s (%v), want the active key with checkpoint key %s", pubOut.String(), err, served.Key)
	}
	// The realm's background key is named for the realm, not the node,
	// and is not the node's.
	if !strings.HasPrefix(pub.BackgroundRealmKey, realm.BackgroundRealmKeyName("localhost")+"+") || pub.BackgroundRealmKey == pub.Keys[0].BackgroundKey {
		t.Fatalf("keys export-public background_realm_key = %q, want the realm's key, apart from the node's %q", pub.BackgroundRealmKey, pub.Keys[0].BackgroundKey)
	}

	verify := func() (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"audit", "verify", "--data", data, "--checkpoint", kept}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := verify(); code != 0 || !strings.Contains(out, "OK: no finding") {
		t.Fatalf("audit verify of the intact log = %d:\n%s", code, out)
	}

	// The attacker, with the store, purges the node's chain.
	emb, err := natsembed.Start(context.Background(), natsembed.Config{DataDir: data, Prefix: "zr", ServerName: node})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(emb.Conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(context.Background(), "ZR_AUDIT")
	if err == nil {
		err = stream.Purge(context.Background(), jetstream.WithPurgeSubject("zr.audit."+node))
	}
	emb.Shutdown(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, out := verify()
	if code != 1 || !strings.Contains(out, "chain-vanished") || !strings.Contains(out, "known node "+node+" has no chain") {
		t.Fatalf("audit verify after the purge = %d:\n%s\nwant exit 1 naming the vanished chain", code, out)
	}

	// Bad usage: a data directory without an embedded store and no --nats.
	bare := t.TempDir()
	if err := os.WriteFile(filepath.Join(bare, "node-id"), []byte("n1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run(context.Background(), []string{"audit", "verify", "--data", bare}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("audit verify of a data directory without a store = %d, want %d", code, exitUsage)
	}
	// Bad usage: nothing to hold the chains to.
	if code := run(context.Background(), []string{"audit", "verify", "--nats", "nats://127.0.0.1:1"}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("audit verify without a kept checkpoint = %d, want %d", code, exitUsage)
	}
}
