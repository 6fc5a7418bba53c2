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

// TestOnlyANodeWithOthersSharesReplayPaths: the replay path feed, which
// only other nodes read, runs on a node whose store others share (a NATS
// cluster) and not on a node alone on its own embedded NATS server, which
// would seal and store its cells for nobody.
func TestOnlyANodeWithOthersSharesReplayPaths(t *testing.T) {
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
		if hasPathStream(t, p.NATS, p.Prefix) {
			t.Fatal("a node alone on its embedded NATS server declared the replay path stream")
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
