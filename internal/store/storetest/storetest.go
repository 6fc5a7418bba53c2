package storetest

import (
	"context"
	"testing"

	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/store"
)

// New opens a store with cfg on a fresh single-node NATS server with
// JetStream (its data in a temporary directory); the server stops, and the
// connection closes, when the test ends.
func New(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	srv := natstest.RunServer(t)
	st, err := store.New(context.Background(), natstest.Connect(t, srv.ClientURL()), cfg)
	if err != nil {
		t.Fatalf("storetest: open a store: %v", err)
	}
	return st
}
