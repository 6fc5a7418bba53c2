package natsconf

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/natstest"
)

func threeNodes(dir string) []Node {
	var nodes []Node
	for i, name := range []string{"n1", "n2", "n3"} {
		nodes = append(nodes, Node{Name: name, Host: "127.0.0.1", ClientPort: 14222 + i, ClusterPort: 16222 + i,
			StoreDir: filepath.Join(dir, "store", name)})
	}
	return nodes
}

// TestGeneratedFilesAreWhatNATSReads writes a 3-node configuration and
// reads it back with nats-server's own parser and jwt/v2's decoders: each
// server trusts the operator, preloads both accounts, has JetStream in the
// ZeroRealm account and authenticated routes to the two others; each user
// is signed by the account with the permissions its role allows.
func TestGeneratedFilesAreWhatNATSReads(t *testing.T) {
	dir := t.TempDir()
	c, err := Generate(Options{Nodes: threeNodes(dir), Gateways: []string{"press-1", "robot-1"}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := c.Write(out, false); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range c.Files {
		paths = append(paths, f.Path)
		st, err := os.Stat(filepath.Join(out, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f.Path, st.Mode().Perm())
		}
	}
	want := []string{"keys/operator.nk", "keys/account.nk", "keys/system-account.nk", "servers/n1.conf", "servers/n2.conf", "servers/n3.conf",
		"realms/realm-1.creds", "realms/realm-2.creds", "realms/realm-3.creds", "gateways/press-1.creds", "gateways/robot-1.creds"}
	if !slices.Equal(paths, want) {
		t.Fatalf("files = %q, want %q", paths, want)
	}
	if got := strings.Join(c.ClientURLs, ","); got != "nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224" {
		t.Errorf("client URLs = %s", got)
	}

	for i, name := range []string{"n1", "n2", "n3"} {
		opts, err := server.ProcessConfigFile(filepath.Join(out, "servers", name+".conf"))
		if err != nil {
			t.Fatalf("%s.conf: %v", name, err)
		}
		if opts.ServerName != name || opts.Port != 14222+i || !opts.JetStream || opts.StoreDir != filepath.Join(dir, "store", name) {
			t.Errorf("%s.conf: name %s port %d jetstream %v store %s", name, opts.ServerName, opts.Port, opts.JetStream, opts.StoreDir)
		}
		if opts.Cluster.Name != "zerorealm" || opts.Cluster.Port != 16222+i || opts.Cluster.Username != "route" || len(opts.Cluster.Password) < 32 {
			t.Errorf("%s.conf: cluster %+v, want authenticated routes", name, opts.Cluster)
		}
		if len(opts.Routes) != 2 {
			t.Errorf("%s.conf: %d routes, want the two other nodes", name, len(opts.Routes))
		}
		for _, r := range opts.Routes {
			if pw, _ := r.User.Password(); r.User.Username() != "route" || pw != opts.Cluster.Password {
				t.Errorf("%s.conf: route %s does not present the route password", name, r.Redacted())
			}
		}
		if len(opts.TrustedOperators) != 1 || opts.TrustedOperators[0].Subject != c.Operator || opts.SystemAccount != c.SystemAccount {
			t.Errorf("%s.conf: operators %v, system account %s", name, opts.TrustedOperators, opts.SystemAccount)
		}
		if _, ok := opts.AccountResolver.(*server.MemAccResolver); !ok {
			t.Errorf("%s.conf: resolver %T, want MEMORY", name, opts.AccountResolver)
		}
		if len(opts.Nkeys) != 0 || len(opts.Users) != 0 {
			t.Errorf("%s.conf lists users; they belong in JWTs", name)
		}
	}

	realm := readCreds(t, filepath.Join(out, "realms", "realm-1.creds"))
	if realm.Issuer != c.Account || !slices.Contains(realm.Pub.Allow, "zr.>") || !slices.Contains(realm.Pub.Allow, "$JS.API.>") || !slices.Contains(realm.Sub.Allow, "_INBOX.>") {
		t.Errorf("realm user: issuer %s, permissions %+v", realm.Issuer, realm.Permissions)
	}
	press := readCreds(t, filepath.Join(out, "gateways", "press-1.creds"))
	rules := natsembed.GatewayRules("zr", "press-1")
	if press.Issuer != c.Account || !slices.Equal(press.Pub.Allow, rules.Publish) || !slices.Equal(press.Sub.Allow, rules.Subscribe) ||
		press.Resp == nil || press.Resp.MaxMsgs != rules.Replies || press.Resp.Expires != rules.RepliesWithin {
		t.Errorf("gateway user: issuer %s, permissions %+v, want GatewayRules %+v", press.Issuer, press.Permissions, rules)
	}
	if press.Name != "gateway-press-1" {
		t.Errorf("gateway user name = %q", press.Name)
	}

	// A second run refuses to replace anything without force.
	again, err := Generate(Options{Nodes: threeNodes(dir)})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, OperatorSeedFile))
	if err := again.Write(out, false); !errors.Is(err, ErrExists) {
		t.Fatalf("Write over existing files = %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(out, OperatorSeedFile))
	if string(before) != string(after) {
		t.Fatal("a refused Write changed the operator key")
	}
	if err := again.Write(out, true); err != nil {
		t.Fatalf("Write with force: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(out, OperatorSeedFile)); string(after) == string(before) {
		t.Fatal("Write with force kept the old operator key")
	}
}

// TestGeneratedTLS reads back a configuration with TLS: clients and routes
// use each node's own certificate, routes always verify the peer, clients
// only when asked.
func TestGeneratedTLS(t *testing.T) {
	dir := t.TempDir()
	ca := natstest.NewCA(t, dir)
	for _, n := range []string{"n1", "n2", "n3"} {
		ca.Issue(n)
	}
	for _, verifyClients := range []bool{false, true} {
		c, err := Generate(Options{Nodes: threeNodes(dir), TLS: &TLS{CA: ca.File,
			Cert: filepath.Join(dir, "{node}.pem"), Key: filepath.Join(dir, "{node}-key.pem"), VerifyClients: verifyClients}})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		if err := c.Write(out, false); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(out, "servers", "n2.conf")
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if opts.TLSConfig == nil || opts.Cluster.TLSConfig == nil {
			t.Fatalf("verify clients %v: client TLS %v, route TLS %v; want both", verifyClients, opts.TLSConfig != nil, opts.Cluster.TLSConfig != nil)
		}
		if verified := opts.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert; verified != verifyClients {
			t.Errorf("verify clients %v: clients' certificates verified: %v", verifyClients, verified)
		}
		if opts.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert {
			t.Errorf("routes do not verify the peer's certificate")
		}
		text, _ := os.ReadFile(conf)
		if !strings.Contains(string(text), filepath.Join(dir, "n2.pem")) || strings.Contains(string(text), "{node}") {
			t.Errorf("n2.conf does not name n2's own certificate:\n%s", text)
		}
	}
}

// TestIssueGatewayCredsOffline issues a gateway later from the account
// seed alone; the user is signed by the same account as at generation.
func TestIssueGatewayCredsOffline(t *testing.T) {
	dir := t.TempDir()
	c, err := Generate(Options{Nodes: threeNodes(dir)})
	if err != nil {
		t.Fatal(err)
	}
	var accountSeed, operatorSeed []byte
	for _, f := range c.Files {
		switch f.Path {
		case AccountSeedFile:
			accountSeed = f.Data
		case OperatorSeedFile:
			operatorSeed = f.Data
		}
	}
	creds, err := IssueGatewayCreds(accountSeed, "zr", "conveyor-1")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "conveyor-1.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	uc := readCreds(t, path)
	if uc.Issuer != c.Account || !slices.Equal(uc.Sub.Allow, natsembed.GatewayRules("zr", "conveyor-1").Subscribe) {
		t.Fatalf("issued user: issuer %s, permissions %+v", uc.Issuer, uc.Permissions)
	}
	if (natsembed.ClientAuth{CredsFile: path}).Problems() != nil {
		t.Fatal("the issued creds file does not pass the realm's own check")
	}
	for _, bad := range []struct {
		seed         []byte
		prefix, twin string
		want         string
	}{
		{operatorSeed, "zr", "conveyor-1", "not an account seed"},
		{[]byte("nonsense"), "zr", "conveyor-1", "account key"},
		{accountSeed, "zr", "conveyor.*", "twin"},
		{accountSeed, "z.r", "conveyor-1", "prefix"},
	} {
		if _, err := IssueGatewayCreds(bad.seed, bad.prefix, bad.twin); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("IssueGatewayCreds(%q, %q) = %v, want ErrInvalid about %s", bad.prefix, bad.twin, err, bad.want)
		}
	}
}

func TestOptionMistakes(t *testing.T) {
	dir := t.TempDir()
	nodes := func(edit func([]Node)) []Node {
		n := threeNodes(dir)
		edit(n)
		return n
	}
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"no nodes", Options{}, "no nodes"},
		{"same client port", Options{Nodes: nodes(func(n []Node) { n[1].ClientPort = n[0].ClientPort })}, "already"},
		{"client port is another's cluster port", Options{Nodes: nodes(func(n []Node) { n[1].ClientPort = n[0].ClusterPort })}, "already"},
		{"port out of range", Options{Nodes: nodes(func(n []Node) { n[2].ClusterPort = 70000 })}, "cluster port 70000"},
		{"host with a quote", Options{Nodes: nodes(func(n []Node) { n[0].Host = `a"b` })}, "host"},
		{"store dir with a newline", Options{Nodes: nodes(func(n []Node) { n[0].StoreDir = "a\nb" })}, "store dir"},
		{"no store dir", Options{Nodes: nodes(func(n []Node) { n[0].StoreDir = "" })}, "store dir"},
		{"same name", Options{Nodes: nodes(func(n []Node) { n[1].Name = "n1" })}, "taken"},
		{"wildcard twin", Options{Nodes: threeNodes(dir), Gateways: []string{"*"}}, "gateway twin"},
		{"twin twice", Options{Nodes: threeNodes(dir), Gateways: []string{"press-1", "press-1"}}, "twice"},
		{"prefix with a dot", Options{Nodes: threeNodes(dir), Prefix: "a.b"}, "prefix"},
		{"TLS without a key", Options{Nodes: threeNodes(dir), TLS: &TLS{CA: "ca.pem", Cert: "{node}.pem"}}, "TLS key"},
		{"TLS path with a quote", Options{Nodes: threeNodes(dir), TLS: &TLS{CA: `c"a.pem`, Cert: "{node}.pem", Key: "k.pem"}}, "TLS CA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Generate(tc.opts); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate = %v, want ErrInvalid about %q", err, tc.want)
			}
		})
	}
}

func readCreds(t *testing.T, path string) *jwt.UserClaims {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(data)
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := kp.PublicKey(); pub != uc.Subject || !nkeys.IsValidPublicUserKey(pub) {
		t.Fatalf("%s: seed of %s, JWT for %s", path, pub, uc.Subject)
	}
	return uc
}
