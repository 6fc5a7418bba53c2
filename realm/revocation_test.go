package realm

import (
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// dialLive opens the realm WebSocket with a bearer token and reads the
// hello.
func dialLive(t testing.TB, r *Realm, token string) *websocket.Conn {
	t.Helper()
	return realmtest.DialLive(t, r.URL(), token)
}

var waitClosed = realmtest.WaitClosed

func twoNodes(t testing.TB) (*Realm, *Realm) {
	servers := natstest.RunCluster(t, 3)
	urls := strings.Split(natstest.ClusterURLs(servers), ",")
	// Both nodes serve the same origin, as behind one load balancer.
	a := startRealm(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-a"})
	b := startRealm(t, Config{Listen: "localhost:0", NATS: urls, Node: "realm-b", Origins: a.origins()})
	return a, b
}
