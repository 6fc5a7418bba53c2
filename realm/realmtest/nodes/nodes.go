package nodes

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// Start runs a realm until the test ends.
func Start(t testing.TB, cfg realm.Config) *realm.Realm {
	t.Helper()
	r, _ := Run(t, cfg)
	return r
}

// Run starts a realm as configured and returns a stop that waits for it
// to end (also run at cleanup), so a test can restart a node on the same
// data directory. The nodes a test runs on one NATS cluster share their
// key files.
func Run(t testing.TB, cfg realm.Config) (*realm.Realm, func()) {
	t.Helper()
	realmtest.Place(t, &cfg.Listen, &cfg.DataDir, &cfg.Logger)
	if cfg.Assets.CustodyScryptN == 0 {
		cfg.Assets.CustodyScryptN = realmtest.CustodyScryptN
	}
	realmtest.ShareClusterKeys(t, len(cfg.NATS) > 0, &cfg.TemplateKeyFile, &cfg.RecordKeyFile)
	return realmtest.Run(t, func() (*realm.Realm, error) { return realm.New(cfg) })
}

// StartLocal listens on localhost, not 127.0.0.1: the relying party id is
// "localhost" and WebAuthn binds passkeys to it.
func StartLocal(t testing.TB) *realm.Realm {
	return Start(t, realm.Config{Listen: "localhost:0"})
}

// TwoOnCluster runs nodes realm-a and realm-b on a 3-node NATS cluster,
// both serving one origin, as behind one load balancer.
func TwoOnCluster(t testing.TB) (*realm.Realm, *realm.Realm) {
	t.Helper()
	return TwoOnClusterWith(t, realm.Config{})
}

// Cluster starts a 3-node NATS cluster for a multi-node test and returns
// its servers and their client URLs. Under -short it skips the test: every
// multi-node test starts one, which -short runs are for leaving out.
func Cluster(t testing.TB) ([]*server.Server, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	servers := natstest.RunCluster(t, 3)
	return servers, strings.Split(natstest.ClusterURLs(servers), ",")
}

// TwoOnClusterWith is TwoOnCluster with cfg for both nodes.
func TwoOnClusterWith(t testing.TB, cfg realm.Config) (*realm.Realm, *realm.Realm) {
	t.Helper()
	_, urls := Cluster(t)
	ca, cb := cfg, cfg
	ca.Listen, ca.NATS, ca.Node = "localhost:0", urls, "realm-a"
	a := Start(t, ca)
	cb.Listen, cb.NATS, cb.Node, cb.Origins = "localhost:0", urls, "realm-b", realmtest.Probe(a).Origins()
	return a, Start(t, cb)
}

// Client is a client of node r's API.
func Client(t testing.TB, r *realm.Realm) *realmtest.Client {
	return realmtest.NewClient(t, r.URL())
}
