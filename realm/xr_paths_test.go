package realm

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// TestEveryNodeKeepsReplayPaths: every node stores the replay path cells
// of what it saw: a node on a NATS cluster for its peers and itself, and
// a node alone on its own embedded NATS server for itself, once it has
// restarted with an empty registry.
func TestEveryNodeKeepsReplayPaths(t *testing.T) {
	hasPathStream := func(t *testing.T, nc *nats.Conn, prefix string) bool {
		t.Helper()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		names := js.StreamNames(context.Background())
		found := false
		for name := range names.Name() {
			// The store names its streams after its prefix, in capitals.
			found = found || (strings.HasPrefix(name, strings.ToUpper(prefix)) && strings.HasSuffix(name, biometrics.PathStream))
		}
		if err := names.Err(); err != nil {
			t.Fatal(err)
		}
		return found
	}

	t.Run("alone", func(t *testing.T) {
		n := startRealm(t, Config{})
		p := realmtest.Probe(n)
		if p.Embedded == nil {
			t.Fatal("a node without NATS URLs runs no embedded server")
		}
		if !hasPathStream(t, p.NATS, p.Prefix) {
			t.Fatal("a node alone on its embedded NATS server did not declare the replay path stream it reads again after a restart")
		}
	})
	t.Run("clustered", func(t *testing.T) {
		srv := natstest.RunServer(t)
		n := startRealm(t, Config{NATS: []string{srv.ClientURL()}, Node: "realm-a"})
		p := realmtest.Probe(n)
		if !hasPathStream(t, p.NATS, p.Prefix) {
			t.Fatal("a node on a NATS cluster did not declare the replay path stream its peers read")
		}
	})
}
