package realm

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/zerorealm/zerorealm/realm/realmtest"
)

// The realm WebSocket's wire, as the tests that drive a whole realm check
// it (realmtest).
const (
	closeReplaced        = realmtest.CloseReplaced
	closeTooManyMessages = realmtest.CloseTooManyMessages
	liveMaxMessage       = realmtest.LiveMaxMessage

	codeInvalid      = realmtest.CodeInvalid
	codeDenied       = realmtest.CodeDenied
	codeUnknownScene = realmtest.CodeUnknownScene
	codeNotJoined    = realmtest.CodeNotJoined
)

type wsMsg = realmtest.LiveMsg

var (
	send        = realmtest.Send
	readUntil   = realmtest.ReadUntil
	poseAt      = realmtest.PoseAt
	isType      = realmtest.IsType
	hasPoseOf   = realmtest.HasPoseOf
	joinFoundry = realmtest.JoinFoundry
	memberOf    = realmtest.MemberOf
	isPresence  = realmtest.IsPresence
)

// dialLive opens the realm WebSocket with a bearer token and reads the
// hello.
func dialLive(t testing.TB, r *Realm, token string) *websocket.Conn {
	t.Helper()
	return realmtest.DialLive(t, r.URL(), token)
}

var waitClosed = realmtest.WaitClosed
