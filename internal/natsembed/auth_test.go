package natsembed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestEmbeddedAlwaysRequiresAuthentication shows that the embedded server
// admits no one but the realm when no gateway is enrolled: not a TCP
// client without credentials, not one with an nkey of its own choosing,
// and not even an in-process connection that presents nothing.
func TestEmbeddedAlwaysRequiresAuthentication(t *testing.T) {
	ctx := context.Background()
	e, err := Start(ctx, Config{DataDir: t.TempDir(), ClientListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(ctx) })

	if nc, err := nats.Connect(e.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("a TCP client without credentials connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a TCP client without credentials: %v, want an authorization violation", err)
	}
	stranger, _ := nkeys.CreateUser()
	spub, _ := stranger.PublicKey()
	if nc, err := nats.Connect(e.ClientURL(), nats.Nkey(spub, stranger.Sign)); err == nil {
		nc.Close()
		t.Fatal("a TCP client with an unknown nkey connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("a TCP client with an unknown nkey: %v, want an authorization violation", err)
	}
	if nc, err := e.ConnectInProcess("anonymous"); err == nil {
		nc.Close()
		t.Fatal("an in-process connection without credentials connected")
	}
	// The realm's own connection works, with every permission.
	if err := e.Conn().Publish("zr.anything", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Conn().Flush(); err != nil || e.Conn().LastError() != nil {
		t.Fatalf("the realm's connection: flush %v, last error %v", err, e.Conn().LastError())
	}
}

func TestGatewayRulesAsServerPermissions(t *testing.T) {
	p := GatewayPermissions("zr", "press-1")
	if got := strings.Join(p.Publish.Allow, " "); got != "zr.twin.press-1.state.>" {
		t.Errorf("publish allow = %q", got)
	}
	if got := strings.Join(p.Subscribe.Allow, " "); got != "zr.twin.press-1.cmd.> zr.revocations zr.twin.keys" {
		t.Errorf("subscribe allow = %q", got)
	}
	if p.Response == nil || p.Response.MaxMsgs != 1 {
		t.Errorf("response permission = %+v, want one reply per request", p.Response)
	}
	// Empty rules allow nothing rather than everything.
	empty := SubjectRules{}.ServerPermissions()
	if empty.Publish == nil || empty.Subscribe == nil || len(empty.Publish.Allow) != 0 || empty.Response != nil {
		t.Errorf("empty rules = %+v, want empty allow lists", empty)
	}
}

// TestClientAuthProblems names every unusable file before anything dials.
func TestClientAuthProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	user, _ := nkeys.CreateUser()
	seed, _ := user.Seed()
	upub, _ := user.PublicKey()
	account, _ := nkeys.CreateAccount()
	apub, _ := account.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = apub
	token, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	goodCreds := write("good.creds", string(creds))
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	// A creds file whose seed was swapped for another user's.
	badCreds := write("mismatched.creds", strings.Replace(string(creds), string(seed), string(otherSeed), 1))
	goodSeed := write("user.nk", string(seed)+"\n")
	accountSeed, _ := account.Seed()
	notUser := write("account.nk", string(accountSeed))
	certFile, keyFile := writeSelfSignedCert(t, dir)
	missing := filepath.Join(dir, "missing")

	good := []ClientAuth{
		{},
		{CredsFile: goodCreds},
		{NKeyFile: goodSeed},
		{CredsFile: goodCreds, TLSCAFile: certFile, TLSCertFile: certFile, TLSKeyFile: keyFile},
	}
	for _, a := range good {
		if p := a.Problems(); len(p) > 0 {
			t.Errorf("%+v: problems %q, want none", a, p)
		}
		if _, err := a.Options(); err != nil {
			t.Errorf("%+v: Options: %v", a, err)
		}
	}
	bad := []struct {
		auth ClientAuth
		want string
	}{
		{ClientAuth{CredsFile: missing}, "no such file"},
		{ClientAuth{CredsFile: goodSeed}, "not a NATS user JWT"},
		{ClientAuth{CredsFile: badCreds}, "not the key its JWT was issued to"},
		{ClientAuth{NKeyFile: missing}, "NATS nkey seed file"},
		{ClientAuth{NKeyFile: notUser}, "not a user seed"},
		{ClientAuth{CredsFile: goodCreds, NKeyFile: goodSeed}, "not both"},
		{ClientAuth{TLSCAFile: goodSeed}, "no PEM certificate"},
		{ClientAuth{TLSCertFile: certFile}, "needs its key"},
		{ClientAuth{TLSKeyFile: keyFile}, "needs its key"},
		{ClientAuth{TLSCertFile: certFile, TLSKeyFile: goodSeed}, "client certificate"},
	}
	for _, c := range bad {
		p := c.auth.Problems()
		if len(p) != 1 || !strings.Contains(p[0], c.want) {
			t.Errorf("%+v: problems %q, want one mentioning %q", c.auth, p, c.want)
		}
		if _, err := c.auth.Options(); !errors.Is(err, ErrClientAuth) {
			t.Errorf("%+v: Options error %v, want ErrClientAuth", c.auth, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Dial(ctx, []string{"nats://127.0.0.1:1"}, "t", ClientAuth{CredsFile: missing}, nil); !errors.Is(err, ErrClientAuth) {
		t.Errorf("Dial with a missing creds file = %v, want ErrClientAuth at once", err)
	}
}

func writeSelfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "realm"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
