package browsertest

import (
	"testing"

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
// it to end (also run at cleanup).
func runRealm(t testing.TB, cfg realm.Config) (*realm.Realm, func()) {
	t.Helper()
	realmtest.Place(t, &cfg.Listen, &cfg.DataDir, &cfg.Logger)
	return realmtest.Run(t, func() (*realm.Realm, error) { return realm.New(cfg) })
}

// startLocalRealm listens on localhost, not 127.0.0.1: the relying party
// id is "localhost" and WebAuthn binds passkeys to it.
func startLocalRealm(t *testing.T) *realm.Realm {
	return startRealm(t, realm.Config{Listen: "localhost:0"})
}

func newClient(t testing.TB, r *realm.Realm) *realmtest.Client {
	return realmtest.NewClient(t, r.URL())
}

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
const pressurePath = "/v1/twins/press-1/actuators/pressure/commands"
