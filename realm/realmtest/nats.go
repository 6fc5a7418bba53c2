package realmtest

import (
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// WaitForRefusals waits until the server has refused who every subject
// outside its own, as r recorded them.
func WaitForRefusals(t testing.TB, r *natstest.Refusals, who string, subs, pubs []string) {
	t.Helper()
	Eventually(t, "the server to refuse "+who+" everything outside its twin", func() bool { return r.Covers(subs, pubs) })
}

// CloseIf closes nc when there is one.
func CloseIf(nc *nats.Conn) {
	if nc != nil {
		nc.Close()
	}
}
