package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natsconf"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/internal/webauthntest"
	"github.com/zerorealm/zerorealm/realm"
	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/realm/realmtest/nodes"
)

// TestRealmOnGeneratedAuthenticatedCluster is the acceptance test of an
// authenticated cluster: three nats-servers run from the configuration
// `zerorealm nats config` writes, with TLS on client connections and
// routes and client certificates required; two realm nodes join it with
// their generated .creds and a client certificate and serve a passkey
// registration through one and the session through the other; a client
// without credentials, with credentials another operator issued, or
// without a client certificate is refused; and a gateway's credentials
// reach its own twin's commands and nothing else, including a gateway
// issued after the servers started, from the account key alone.
func TestRealmOnGeneratedAuthenticatedCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := natstest.NewCA(t, tlsDir)
	for i := range 3 {
		ca.Issue(fmt.Sprintf("n%d", i+1))
	}
	clientCert, clientKey := ca.Issue("client")
	// The configuration names its ports, so it is written again, in a
	// directory of its own, whenever one was taken before its server
	// listened.
	var (
		clusterNodes []natsconf.Node
		generated    *natsconf.Cluster
		out          string
	)
	file := func(rel string) string { return filepath.Join(out, filepath.FromSlash(rel)) }
	servers := natstest.RunConfigFilesOnFreePorts(t, 6, func(ports []int) []string {
		attempt := t.TempDir()
		clusterNodes = nil
		for i := range 3 {
			name := fmt.Sprintf("n%d", i+1)
			clusterNodes = append(clusterNodes, natsconf.Node{Name: name, Host: "127.0.0.1", ClientPort: ports[2*i], ClusterPort: ports[2*i+1],
				StoreDir: filepath.Join(attempt, "jetstream", name)})
		}
		var err error
		generated, err = natsconf.Generate(natsconf.Options{Nodes: clusterNodes, Gateways: []string{"press-1"}, TLS: &natsconf.TLS{
			CA: ca.File, Cert: filepath.Join(tlsDir, "{node}.pem"), Key: filepath.Join(tlsDir, "{node}-key.pem"), VerifyClients: true}})
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(attempt, "nats")
		if err := generated.Write(out, false); err != nil {
			t.Fatal(err)
		}
		return []string{file("servers/n1.conf"), file("servers/n2.conf"), file("servers/n3.conf")}
	})
	urls := generated.ClientURLs

	// Each server enables the account's JetStream as it loads the account:
	// wait until the cluster answers for it, as an operator would before
	// starting realm nodes.
	tlsOK := []nats.Option{nats.RootCAs(ca.File), nats.ClientCert(clientCert, clientKey)}
	probe, err := nats.Connect(strings.Join(urls, ","), append(tlsOK, nats.UserCredentials(file("realms/realm-1.creds")))...)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(probe)
	if err != nil {
		t.Fatal(err)
	}
	realmtest.EventuallyWithin(t, "JetStream in the ZeroRealm account", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	probe.Close()

	// (a) Realm nodes work with their credentials, on R3 streams.
	a := nodes.Start(t, realm.Config{NATS: urls[:1], NATSCreds: file("realms/realm-1.creds"), Node: "realm-a", Listen: "localhost:0",
		NATSTLSCA: ca.File, NATSTLSCert: clientCert, NATSTLSKey: clientKey})
	b := nodes.Start(t, realm.Config{NATS: urls[2:], NATSCreds: file("realms/realm-2.creds"), Node: "realm-b", Listen: "localhost:0",
		NATSTLSCA: ca.File, NATSTLSCert: clientCert, NATSTLSKey: clientKey})
	ada := nodes.Client(t, a).Register(webauthntest.New(), "ada")
	if ada.Token == "" {
		t.Fatal("registration through node a gave no session")
	}
	viaB := nodes.Client(t, b)
	viaB.Token = ada.Token
	var me struct {
		Avatar map[string]any `json:"avatar"`
	}
	viaB.Must("GET", "/v1/avatars/me", nil, &me)
	if me.Avatar["id"] != ada.Avatar["id"] || me.Avatar["name"] != "ada" {
		t.Fatalf("node b sees avatar %v for node a's session, want ada %v", me.Avatar, ada.Avatar["id"])
	}
	var health map[string]any
	if code := realmtest.Get(t, b.URL()+"/healthz", &health); code != 200 || health["replicas"] != float64(3) {
		t.Fatalf("GET /healthz on b = %d %v, want 200 with 3 replicas", code, health)
	}

	// (b) No credentials, or another operator's, are refused; so is a
	// client without a certificate, whatever its credentials.
	all := strings.Join(urls, ",")
	if nc, err := nats.Connect(all, tlsOK...); !errors.Is(err, nats.ErrAuthorization) {
		realmtest.CloseIf(nc)
		t.Fatalf("a client without credentials: %v, want an authorization violation", err)
	}
	foreign, err := natsconf.Generate(natsconf.Options{Nodes: clusterNodes[:1]})
	if err != nil {
		t.Fatal(err)
	}
	foreignDir := filepath.Join(dir, "foreign")
	if err := foreign.Write(foreignDir, false); err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(all, append(tlsOK, nats.UserCredentials(filepath.Join(foreignDir, "realms", "realm-1.creds")))...); !errors.Is(err, nats.ErrAuthorization) {
		realmtest.CloseIf(nc)
		t.Fatalf("a client with another operator's credentials: %v, want an authorization violation", err)
	}
	if nc, err := nats.Connect(all, nats.RootCAs(ca.File), nats.UserCredentials(file("realms/realm-1.creds"))); err == nil {
		nc.Close()
		t.Fatal("a client without a certificate connected")
	}

	// A gateway reaches its twin's commands and nothing else.
	confined(t, a, all, file("gateways/press-1.creds"), tlsOK, "press-1", "conveyor-1")

	// A gateway issued now, offline, from the account key alone: the
	// running servers admit it without any change.
	accountSeed, err := os.ReadFile(file(natsconf.AccountSeedFile))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := natsconf.IssueGatewayCreds(accountSeed, "zr", "conveyor-1")
	if err != nil {
		t.Fatal(err)
	}
	late := filepath.Join(dir, "conveyor-1.creds")
	if err := os.WriteFile(late, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	confined(t, a, all, late, tlsOK, "conveyor-1", "press-1")

	// Node a was given n1 alone; when n1 stops, it reconnects with its
	// credentials to a server it learned of, and serves again.
	servers[0].Shutdown()
	servers[0].WaitForShutdown()
	viaA := nodes.Client(t, a)
	viaA.Token = ada.Token
	realmtest.EventuallyWithin(t, "node a to reconnect and serve without n1", 60*time.Second, func() bool {
		code, _ := viaA.Call("GET", "/v1/avatars/me", nil, nil)
		return code == 200 && realmtest.Probe(a).NATS.IsConnected() && realmtest.Probe(a).NATS.ConnectedServerName() != "n1"
	})
}

// confined connects with a gateway's creds and checks that the cluster
// delivers its own twin's commands (published by the realm) and refuses
// every subscription and publication outside its twin.
func confined(t *testing.T, r *realm.Realm, urls, credsFile string, tlsOpts []nats.Option, own, other string) {
	t.Helper()
	var refused natstest.Refusals
	gw, err := nats.Connect(urls, append(tlsOpts, nats.UserCredentials(credsFile), nats.ErrorHandler(refused.Record))...)
	if err != nil {
		t.Fatalf("gateway %s: %v", own, err)
	}
	defer gw.Close()
	cmds, err := gw.SubscribeSync("zr.twin." + own + ".cmd.>")
	if err != nil {
		t.Fatal(err)
	}
	outside := []string{"zr.twin." + other + ".cmd.>", "zr.twin.*.cmd.>", "zr.audit.>", "$JS.API.>", "$KV.>"}
	for _, subj := range outside {
		if _, err := gw.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	forbidden := []string{"zr.twin." + other + ".state.x", "zr.twin." + own + ".cmd.x", "zr.audit.forged", "zr.revocations", "$JS.API.STREAM.LIST", "$JS.API.STREAM.PURGE.ZR_AUDIT"}
	for _, subj := range forbidden {
		if err := gw.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.Publish("zr.twin."+own+".state.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	// Subscription interest travels between servers: publish until it
	// arrives rather than once.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := realmtest.Probe(r).NATS.Publish("zr.twin."+own+".cmd.probe", []byte("own")); err != nil {
			t.Fatal(err)
		}
		if m, err := cmds.NextMsg(200 * time.Millisecond); err == nil {
			if string(m.Data) != "own" {
				t.Fatalf("gateway %s received %q", own, m.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s never received its own twin's command", own)
		}
	}
	realmtest.WaitForRefusals(t, &refused, "gateway "+own, outside, forbidden)
	for _, mine := range []string{`"zr.twin.` + own + `.state.x"`, `"zr.twin.` + own + `.cmd.>"`} {
		if strings.Contains(refused.String(), mine) {
			t.Errorf("gateway %s was refused its own subject %s:\n%s", own, mine, refused.String())
		}
	}
}
