package clustertest

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// dialLive opens node r's realm WebSocket with a bearer token and reads
// the hello.
func dialLive(t testing.TB, r *realm.Realm, token string) *websocket.Conn {
	t.Helper()
	return realmtest.DialLive(t, r.URL(), token)
}
