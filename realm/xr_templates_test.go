package realm

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/natstest"
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
