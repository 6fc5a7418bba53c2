package browsertest

import (
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// Starting nodes (realmtest/nodes).
var (
	startRealm      = nodes.Start
	runRealm        = nodes.Run
	startLocalRealm = nodes.StartLocal
	newClient       = nodes.Client
)

// What these tests share with the realm's own (realmtest).
var (
	eventually    = realmtest.Eventually
	get           = realmtest.Get
	newOperator   = realmtest.NewOperator
	waitTwinsLive = realmtest.WaitTwinsLive
	standIn       = realmtest.StandIn
	newMarketUser = realmtest.NewMarketUser
	mint          = realmtest.Mint
	intent        = realmtest.Intent
	deadlineIn    = realmtest.DeadlineIn
	testLogger    = realmtest.Logger
)

const digestA = realmtest.DigestA

type transferReply = realmtest.TransferReply

// marketScenes is the realm's test scene with a transferable unique
// collection, a soulbound one and a fungible one.
const marketScenes = "../testdata"

// pressurePath is the press's pressure actuator, which a critical command
// sets.
const pressurePath = realmtest.PressurePath
