package realm

import (
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
)

// TestCeremoniesExpireOnTheRealmClock: the realm's clock (Config.Clock)
// reaches the passkey ceremonies: a sign-in finished a second before its
// ceremony expires is let in, one finished a second after is refused, and
// no real time passes for either.
func TestCeremoniesExpireOnTheRealmClock(t *testing.T) {
	clk := clock.NewManual(time.Now())
	r := startRealm(t, Config{Listen: "localhost:0", Clock: clk})
	c := newClient(t, r)
	auth := webauthntest.New()
	c.Register(auth, "ada")

	inTime := c.BeginLogin(auth, "ada")
	clk.Advance(identity.CeremonyTTL - time.Second)
	if code, p := c.Call("POST", "/v1/webauthn/login/finish", inTime, nil); code != 200 {
		t.Fatalf("a sign-in finished a second before its ceremony expires = %d %+v, want 200", code, p)
	}
	late := c.BeginLogin(auth, "ada")
	clk.Advance(identity.CeremonyTTL + time.Second)
	if code, p := c.Call("POST", "/v1/webauthn/login/finish", late, nil); code < 400 || code >= 500 {
		t.Fatalf("a sign-in finished a second after its ceremony expired = %d %+v, want a refusal", code, p)
	}
}
