package natsembed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natstest"
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
	if got := strings.Join(p.Subscribe.Allow, " "); got != "zr.twin.press-1.cmd.> zr.twin.press-1.status zr.revocations zr.twin.keys" {
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
	certFile, keyFile := natstest.NewCA(t, dir).Issue("client")
	missing := filepath.Join(dir, "missing")
	// The same secrets, copied with a default umask: every user of the
	// machine may read them.
	openToAll := func(name, from string) string {
		t.Helper()
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	looseCreds, looseSeed, looseKey := openToAll("loose.creds", goodCreds), openToAll("loose.nk", goodSeed), openToAll("loose-key.pem", keyFile)

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
		{ClientAuth{CredsFile: looseCreds}, "chmod 600 " + looseCreds},
		{ClientAuth{NKeyFile: looseSeed}, "chmod 600 " + looseSeed},
		{ClientAuth{TLSCertFile: certFile, TLSKeyFile: looseKey}, "chmod 600 " + looseKey},
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

// TestDialPresentsTLSAndNKey runs a server that verifies client
// certificates and admits one nkey user: Dial with the authority, the
// client certificate and the seed file connects; without the certificate,
// or with another seed, it is refused until its context ends.
func TestDialPresentsTLSAndNKey(t *testing.T) {
	dir := t.TempDir()
	ca := natstest.NewCA(t, dir)
	serverCert, serverKey := ca.Issue("server")
	clientCert, clientKey := ca.Issue("realm")
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey, CaFile: ca.File, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	upub, _ := user.PublicKey()
	seed, _ := user.Seed()
	seedFile := filepath.Join(dir, "realm.nk")
	writeFile(t, seedFile, seed)
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(dir, "other.nk")
	writeFile(t, otherFile, otherSeed)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLS: true, TLSVerify: true, TLSConfig: tlsConfig, TLSTimeout: 5, Nkeys: []*server.NkeyUser{{Nkey: upub}}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("TLS server not ready")
	}
	url := []string{srv.ClientURL()}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := Dial(ctx, url, "realm", ClientAuth{NKeyFile: seedFile, TLSCAFile: ca.File, TLSCertFile: clientCert, TLSKeyFile: clientKey}, nil)
	if err != nil {
		t.Fatalf("Dial with TLS and the nkey: %v", err)
	}
	defer nc.Close()
	if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete || len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "server" {
		t.Fatalf("TLS state: %v; want TLS with the server's certificate", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	for name, auth := range map[string]ClientAuth{
		"no client certificate": {NKeyFile: seedFile, TLSCAFile: ca.File},
		"another nkey":          {NKeyFile: otherFile, TLSCAFile: ca.File, TLSCertFile: clientCert, TLSKeyFile: clientKey},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		nc, err := Dial(ctx, url, "intruder", auth, nil)
		cancel()
		if err == nil {
			nc.Close()
			t.Errorf("Dial with %s connected", name)
		}
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
