package clustertest

import (
	"testing"

	"github.com/gorilla/websocket"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// Starting nodes (realmtest/nodes).
var (
	startRealm = nodes.Start
	runRealm   = nodes.Run
	twoNodes   = nodes.TwoOnCluster
	newClient  = nodes.Client
)

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
)

// The realm WebSocket as the realm's own tests speak it (realmtest).
var (
	send        = realmtest.Send
	readUntil   = realmtest.ReadUntil
	poseAt      = realmtest.PoseAt
	isType      = realmtest.IsType
	hasPoseOf   = realmtest.HasPoseOf
	isPresence  = realmtest.IsPresence
	joinFoundry = realmtest.JoinFoundry
	newOperator = realmtest.NewOperator
)

type wsMsg = realmtest.LiveMsg
