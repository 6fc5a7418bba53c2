package realmtest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/realm/internal/live/xr"
	"github.com/zerorealm/zerorealm/realm/internal/node"
	"github.com/zerorealm/zerorealm/realm/internal/probe"
)

// Node is a realm node as the tests drive it; *realm.Realm is one.
type Node interface {
	URL() string
	Node() string
	Ready() <-chan struct{}
	Serve(ctx context.Context) error
}

// Run makes a node with newNode and serves it until the test ends. It
// returns a stop that waits for the node to end (also run at cleanup), so
// a test can restart a node on the same data directory.
func Run[N Node](t testing.TB, newNode func() (N, error)) (N, func()) {
	t.Helper()
	n, err := newNode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	select {
	case <-n.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("realm failed to start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("realm not ready after 30s")
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after stop, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("realm did not stop")
		}
	}
	t.Cleanup(stop)
	return n, stop
}

// CustodyScryptN is the scrypt cost of the custodial key files of the
// realms tests start: what they check is who may sign, not the cost of
// guessing a leaked file's passphrase, and under the race detector on a
// busy machine the default cost alone can outlast a request's deadline.
const CustodyScryptN = 2

// Place fills in where a node listens and keeps its data when the test
// did not say, and has it log into the test.
func Place(t testing.TB, listen, dataDir *string, logger **slog.Logger) {
	if *listen == "" {
		*listen = "127.0.0.1:0"
	}
	if *dataDir == "" {
		*dataDir = t.TempDir()
	}
	*logger = Logger(t)
}

// clusterKeys holds the directory of the key files each test's nodes share.
var clusterKeys = struct {
	sync.Mutex
	dirs map[testing.TB]string
}{dirs: map[testing.TB]string{}}

// ShareClusterKeys gives every node a test starts on a NATS cluster the
// same template and record key files, as an operator copies them to each
// node; nodes on their own embedded server keep theirs in their data dir.
func ShareClusterKeys(t testing.TB, clustered bool, templateKeyFile, recordKeyFile *string) {
	t.Helper()
	if !clustered {
		return
	}
	dir := ClusterKeyDir(t)
	if *templateKeyFile == "" {
		*templateKeyFile = filepath.Join(dir, xr.TemplateKeyFile)
	}
	if *recordKeyFile == "" {
		*recordKeyFile = filepath.Join(dir, node.RecordKeyFile)
	}
}

// ClusterKeyDir is the directory of the test's shared key files.
func ClusterKeyDir(t testing.TB) string {
	clusterKeys.Lock()
	defer clusterKeys.Unlock()
	dir, ok := clusterKeys.dirs[t]
	if !ok {
		dir = t.TempDir()
		clusterKeys.dirs[t] = dir
		t.Cleanup(func() {
			clusterKeys.Lock()
			delete(clusterKeys.dirs, t)
			clusterKeys.Unlock()
		})
	}
	return dir
}

// Probe reads what a running node holds beyond its API.
func Probe(n Node) probe.Node { return probe.Of(n) }
