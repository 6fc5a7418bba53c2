package clustertest

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// startRealm runs a realm until the test ends.
func startRealm(t testing.TB, cfg realm.Config) *realm.Realm {
	t.Helper()
	r, _ := runRealm(t, cfg)
	return r
}

// runRealm starts a realm as configured and returns a stop that waits for
// it to end (also run at cleanup), so a test can restart a node on the
// same data directory. The nodes of a test share their key files.
func runRealm(t testing.TB, cfg realm.Config) (*realm.Realm, func()) {
	t.Helper()
	realmtest.Place(t, &cfg.Listen, &cfg.DataDir, &cfg.Logger)
	realmtest.ShareClusterKeys(t, len(cfg.NATS) > 0, &cfg.TemplateKeyFile, &cfg.RecordKeyFile)
	return realmtest.Run(t, func() (*realm.Realm, error) { return realm.New(cfg) })
}

// twoNodes runs nodes realm-a and realm-b on a 3-node NATS cluster, both
// serving one origin, as behind one load balancer.
func twoNodes(t testing.TB) (*realm.Realm, *realm.Realm) {
	urls := strings.Split(natstest.ClusterURLs(natstest.RunCluster(t, 3)), ",")
	a := startRealm(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-a"})
	b := startRealm(t, realm.Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: realmtest.Probe(a).Origins()})
	return a, b
}

func newClient(t testing.TB, r *realm.Realm) *realmtest.Client {
	return realmtest.NewClient(t, r.URL())
}

// What these tests share with the realm's own (realmtest).
var (
	eventually       = realmtest.Eventually
	eventuallyWithin = realmtest.EventuallyWithin
	get              = realmtest.Get
	getAudit         = realmtest.GetAudit
	auditorToken     = realmtest.AuditorToken
	dialLive         = func(t testing.TB, r *realm.Realm, token string) *websocket.Conn {
		return realmtest.DialLive(t, r.URL(), token)
	}
	waitClosed = realmtest.WaitClosed
	testLogger = realmtest.Logger
)
