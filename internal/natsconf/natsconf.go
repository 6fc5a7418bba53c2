package natsconf

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/zerorealm/zerorealm/internal/natsembed"
)

// Node is one nats-server of the cluster.
type Node struct {
	// Name is the server_name; default "n1", "n2", ... by position.
	Name string
	// Host is the address the node listens on and the other nodes and the
	// clients reach it at (a name or an IP).
	Host string
	// ClientPort and ClusterPort are its client and route ports.
	ClientPort  int
	ClusterPort int
	// StoreDir is where its JetStream keeps its files on its machine.
	StoreDir string
}

// Options describe the cluster to configure.
type Options struct {
	// Nodes are the servers, at least one.
	Nodes []Node
	// ClusterName names the cluster; default "zerorealm".
	ClusterName string
	// Prefix is the realm's subject prefix, which the users' permissions
	// are written in; default "zr".
	Prefix string
	// Realms is how many realm node users to issue; default one per node.
	Realms int
	// Gateways are the twins to issue a gateway user for, each confined to
	// its own twin.
	Gateways []string
	// TLS, when set, makes every server speak only TLS, to clients and on
	// routes, where each server also proves itself with its certificate.
	TLS *TLS
}

// TLS names the certificate files on each server. In each path, "{node}"
// stands for the node's name, so one pattern serves every node.
type TLS struct {
	// CA is the PEM bundle of the authorities that sign the servers' (and,
	// with VerifyClients, the clients') certificates.
	CA string
	// Cert and Key are the server's PEM certificate and key. A route is a
	// connection both ways, so the certificate must be valid for the
	// node's host and for server and client authentication.
	Cert, Key string
	// VerifyClients makes clients present a certificate the CA signed, on
	// top of their credentials (zerorealm serve --nats-tls-cert).
	VerifyClients bool
}

// NodePlaceholder in a TLS path stands for the node's name.
const NodePlaceholder = "{node}"

// Destination says where a generated file goes.
type Destination int

const (
	// OperatorOnly files are the signing keys: they never leave the
	// operator's machine.
	OperatorOnly Destination = iota
	// Server files go to one NATS server.
	Server
	// RealmNode files go to one realm node.
	RealmNode
	// Gateway files go to one twin gateway.
	Gateway
)

func (d Destination) String() string {
	switch d {
	case OperatorOnly:
		return "operator only"
	case Server:
		return "NATS server"
	case RealmNode:
		return "realm node"
	case Gateway:
		return "gateway"
	}
	return "unknown"
}

// File is one generated file. Every one holds a secret (a seed, or the
// route password), so each is written with mode 0600.
type File struct {
	// Path is relative to the output directory, with forward slashes.
	Path string
	Data []byte
	// For says where the file goes; Owner names the server, realm node or
	// twin.
	For   Destination
	Owner string
}

// Cluster is a generated configuration, in memory until written.
type Cluster struct {
	Files []File
	// ClientURLs are the nodes' client URLs, what realm nodes and gateways
	// are given as --nats.
	ClientURLs []string
	// Operator, SystemAccount and Account are the public keys of the
	// operator and of the two accounts.
	Operator, SystemAccount, Account string
}

// Paths of the generated files, relative to the output directory.
const (
	keysDir            = "keys"
	OperatorSeedFile   = keysDir + "/operator.nk"
	AccountSeedFile    = keysDir + "/account.nk"
	SystemAccountFile  = keysDir + "/system-account.nk"
	serversDir         = "servers"
	realmsDir          = "realms"
	gatewaysDir        = "gateways"
	defaultClusterName = "zerorealm"
	routeUser          = "route"
	// accountName names the ZeroRealm account in its JWT.
	accountName = "ZERO_REALM"
)

// ErrInvalid is wrapped by every error about Options.
var ErrInvalid = errors.New("natsconf: invalid options")

// OptionError is a mistake in what the caller asked for (ErrInvalid) or a
// file in the way (ErrExists): Detail says it in the caller's terms, so a
// command line can print it as a usage error.
type OptionError struct {
	Err    error // ErrInvalid or ErrExists
	Detail string
}

func (e *OptionError) Error() string { return e.Err.Error() + ": " + e.Detail }
func (e *OptionError) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) error {
	return &OptionError{Err: ErrInvalid, Detail: fmt.Sprintf(format, args...)}
}

var (
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// twinPattern is the twin id syntax of package twin: a single subject
	// token that cannot be a wildcard.
	twinPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	// hostPattern keeps a host to what can stand unquoted in a URL and
	// quoted in a configuration file: names, IPv4 and IPv6 addresses.
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9.:_-]{1,253}$`)
)

// ValidTwin reports whether id can be a gateway's twin.
func ValidTwin(id string) bool { return twinPattern.MatchString(id) }

// Generate makes the keys, the account JWTs, one configuration file per
// node and the users' credentials.
func Generate(o Options) (*Cluster, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	operator, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	system, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	account, err := nkeys.CreateAccount()
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	c.Operator, _ = operator.PublicKey()
	c.SystemAccount, _ = system.PublicKey()
	c.Account, _ = account.PublicKey()

	oc := jwt.NewOperatorClaims(c.Operator)
	oc.Name = o.ClusterName
	oc.SystemAccount = c.SystemAccount
	operatorJWT, err := oc.Encode(operator)
	if err != nil {
		return nil, fmt.Errorf("natsconf: operator JWT: %w", err)
	}
	sc := jwt.NewAccountClaims(c.SystemAccount)
	sc.Name = "SYS"
	systemJWT, err := sc.Encode(operator)
	if err != nil {
		return nil, fmt.Errorf("natsconf: system account JWT: %w", err)
	}
	ac := jwt.NewAccountClaims(c.Account)
	ac.Name = accountName
	// JetStream is off for an account unless its JWT grants storage.
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit,
		Streams: jwt.NoLimit, Consumer: jwt.NoLimit, MaxAckPending: jwt.NoLimit}
	accountJWT, err := ac.Encode(operator)
	if err != nil {
		return nil, fmt.Errorf("natsconf: account JWT: %w", err)
	}

	for _, seed := range []struct {
		path string
		kp   nkeys.KeyPair
	}{{OperatorSeedFile, operator}, {AccountSeedFile, account}, {SystemAccountFile, system}} {
		s, _ := seed.kp.Seed()
		c.Files = append(c.Files, File{Path: seed.path, Data: append(s, '\n'), For: OperatorOnly})
	}

	password, err := routePassword()
	if err != nil {
		return nil, err
	}
	for _, n := range o.Nodes {
		c.ClientURLs = append(c.ClientURLs, "nats://"+net.JoinHostPort(n.Host, strconv.Itoa(n.ClientPort)))
	}
	for i, n := range o.Nodes {
		conf := serverConfig(o, i, password, trust{operatorJWT: operatorJWT,
			systemAccount: c.SystemAccount, systemJWT: systemJWT, account: c.Account, accountJWT: accountJWT})
		c.Files = append(c.Files, File{Path: serversDir + "/" + n.Name + ".conf", Data: conf, For: Server, Owner: n.Name})
	}
	for i := range o.Realms {
		name := fmt.Sprintf("realm-%d", i+1)
		creds, err := issueUser(account, name, RealmRules(o.Prefix))
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, File{Path: realmsDir + "/" + name + ".creds", Data: creds, For: RealmNode, Owner: name})
	}
	for _, twinID := range o.Gateways {
		creds, err := issueUser(account, "gateway-"+twinID, natsembed.GatewayRules(o.Prefix, twinID))
		if err != nil {
			return nil, err
		}
		c.Files = append(c.Files, File{Path: gatewaysDir + "/" + twinID + ".creds", Data: creds, For: Gateway, Owner: twinID})
	}
	return c, nil
}

// RealmRules are what a realm node may do in the ZeroRealm account: its
// prefix's subjects, the JetStream API and acknowledgements (JetStream
// names its streams and buckets in single tokens, so they cannot be
// narrowed to the prefix by subject), key-value subjects, and its inboxes,
// where requests of other nodes are answered. The account holds nothing
// but the realm's data: another application belongs in another account.
func RealmRules(prefix string) natsembed.SubjectRules {
	return natsembed.SubjectRules{
		Publish:   []string{prefix + ".>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "_INBOX.>"},
		Subscribe: []string{prefix + ".>", "_INBOX.>"},
	}
}

// IssueGatewayCreds issues the .creds file of a gateway for twinID, signed
// with the ZeroRealm account's seed (keys/account.nk of Generate's output).
// Servers that trust the account admit it at once: they need no change.
func IssueGatewayCreds(accountSeed []byte, prefix, twinID string) ([]byte, error) {
	if prefix == "" {
		prefix = "zr"
	}
	if !namePattern.MatchString(prefix) {
		return nil, invalidf("prefix %q: want 1 to 64 letters, digits, '-' or '_'", prefix)
	}
	if !ValidTwin(twinID) {
		return nil, invalidf("twin %q: want 1 to 64 lower-case letters, digits or '-'", twinID)
	}
	account, err := nkeys.ParseDecoratedNKey(accountSeed)
	if err != nil {
		return nil, invalidf("account key: %v", err)
	}
	if pub, _ := account.PublicKey(); !nkeys.IsValidPublicAccountKey(pub) {
		return nil, invalidf("the key is not an account seed (SA...); use %s", AccountSeedFile)
	}
	return issueUser(account, "gateway-"+twinID, natsembed.GatewayRules(prefix, twinID))
}

// issueUser makes a new user key and its JWT, signed by account, as a
// standard .creds file.
func issueUser(account nkeys.KeyPair, name string, rules natsembed.SubjectRules) ([]byte, error) {
	user, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Permissions = userPermissions(rules)
	token, err := uc.Encode(account)
	if err != nil {
		return nil, fmt.Errorf("natsconf: user %s: %w", name, err)
	}
	return jwt.FormatUserConfig(token, seed)
}

// userPermissions are rules as a JWT user's permissions. An empty allow
// list in a JWT allows everything, so a direction with nothing allowed is
// denied outright.
func userPermissions(r natsembed.SubjectRules) jwt.Permissions {
	var p jwt.Permissions
	p.Pub.Allow, p.Sub.Allow = r.Publish, r.Subscribe
	if len(r.Publish) == 0 {
		p.Pub.Deny = jwt.StringList{">"}
	}
	if len(r.Subscribe) == 0 {
		p.Sub.Deny = jwt.StringList{">"}
	}
	if r.Replies > 0 {
		p.Resp = &jwt.ResponsePermission{MaxMsgs: r.Replies, Expires: r.RepliesWithin}
	}
	return p
}

// trust is what every server is configured to trust: the operator and the
// JWTs of its two accounts.
type trust struct {
	operatorJWT              string
	systemAccount, systemJWT string
	account, accountJWT      string
}

// serverConfig is node i's nats-server configuration.
func serverConfig(o Options, i int, password string, t trust) []byte {
	n := o.Nodes[i]
	var b strings.Builder
	fmt.Fprintf(&b, "# NATS server %s (%d of %d) of the ZeroRealm cluster %s, written by `zerorealm nats config`.\n", n.Name, i+1, len(o.Nodes), o.ClusterName)
	b.WriteString("# It holds the cluster's route password: keep it private (mode 0600).\n\n")
	fmt.Fprintf(&b, "server_name: %s\n", n.Name)
	fmt.Fprintf(&b, "listen: %q\n", net.JoinHostPort(n.Host, strconv.Itoa(n.ClientPort)))
	if o.TLS != nil {
		b.WriteString("# Clients must use TLS.\n")
		writeTLS(&b, "", o.TLS, n.Name, o.TLS.VerifyClients)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n\n", n.StoreDir)
	if len(o.Nodes) > 1 {
		b.WriteString("# Routes authenticate with a password only the cluster's servers know.\n")
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  listen: %q\n", o.ClusterName, net.JoinHostPort(n.Host, strconv.Itoa(n.ClusterPort)))
		fmt.Fprintf(&b, "  authorization {\n    user: %s\n    password: %q\n  }\n", routeUser, password)
		if o.TLS != nil {
			b.WriteString("  # Routes use TLS and each server proves itself with its certificate.\n")
			writeTLS(&b, "  ", o.TLS, n.Name, true)
		}
		b.WriteString("  routes: [\n")
		for j, peer := range o.Nodes {
			if j != i {
				fmt.Fprintf(&b, "    %q\n", "nats://"+routeUser+":"+password+"@"+net.JoinHostPort(peer.Host, strconv.Itoa(peer.ClusterPort)))
			}
		}
		b.WriteString("  ]\n}\n\n")
	}
	b.WriteString("# Decentralized authentication: clients present user JWTs signed by an\n")
	b.WriteString("# account of this operator; no user is listed here.\n")
	fmt.Fprintf(&b, "operator: %q\n", t.operatorJWT)
	fmt.Fprintf(&b, "system_account: %q\n", t.systemAccount)
	b.WriteString("resolver: MEMORY\nresolver_preload: {\n")
	fmt.Fprintf(&b, "  %q: %q\n", t.systemAccount, t.systemJWT)
	fmt.Fprintf(&b, "  %q: %q\n", t.account, t.accountJWT)
	b.WriteString("}\n")
	return []byte(b.String())
}

// writeTLS writes a tls block, indented by indent, with node's files.
func writeTLS(b *strings.Builder, indent string, t *TLS, node string, verify bool) {
	file := func(p string) string { return strings.ReplaceAll(p, NodePlaceholder, node) }
	fmt.Fprintf(b, "%stls {\n", indent)
	fmt.Fprintf(b, "%s  cert_file: %q\n%s  key_file: %q\n%s  ca_file: %q\n", indent, file(t.Cert), indent, file(t.Key), indent, file(t.CA))
	if verify {
		fmt.Fprintf(b, "%s  verify: true\n", indent)
	}
	fmt.Fprintf(b, "%s}\n", indent)
}

func routePassword() (string, error) {
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("natsconf: route password: %w", err)
	}
	// URL-safe without escaping: it stands in every route URL.
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// validPath is a path that can stand quoted in a configuration file as it
// is: no quotes, escapes or line breaks.
func validPath(p string) bool { return p != "" && !strings.ContainsAny(p, "\"\n\r\\") }

func (o *Options) normalize() error {
	if o.ClusterName == "" {
		o.ClusterName = defaultClusterName
	}
	if o.Prefix == "" {
		o.Prefix = "zr"
	}
	if o.Realms == 0 {
		o.Realms = len(o.Nodes)
	}
	var p []string
	if len(o.Nodes) == 0 {
		p = append(p, "no nodes: want at least one")
	}
	if !namePattern.MatchString(o.ClusterName) {
		p = append(p, fmt.Sprintf("cluster name %q: want 1 to 64 letters, digits, '-' or '_'", o.ClusterName))
	}
	if !namePattern.MatchString(o.Prefix) {
		p = append(p, fmt.Sprintf("prefix %q: want 1 to 64 letters, digits, '-' or '_'", o.Prefix))
	}
	if o.Realms < 0 {
		p = append(p, fmt.Sprintf("realm users %d: want at least one", o.Realms))
	}
	names := map[string]bool{}
	addrs := map[string]string{}
	for i := range o.Nodes {
		n := &o.Nodes[i]
		if n.Name == "" {
			n.Name = fmt.Sprintf("n%d", i+1)
		}
		if !namePattern.MatchString(n.Name) || names[n.Name] {
			p = append(p, fmt.Sprintf("node %d: name %q is not 1 to 64 letters, digits, '-' or '_', or is taken", i+1, n.Name))
		}
		names[n.Name] = true
		if !hostPattern.MatchString(n.Host) {
			p = append(p, fmt.Sprintf("node %s: host %q: want a host name or an IP address", n.Name, n.Host))
		}
		if !validPath(n.StoreDir) {
			p = append(p, fmt.Sprintf("node %s: store dir %q: want a path without quotes, backslashes or line breaks", n.Name, n.StoreDir))
		}
		for _, port := range []struct {
			what string
			n    int
		}{{"client", n.ClientPort}, {"cluster", n.ClusterPort}} {
			if port.n < 1 || port.n > 65535 {
				p = append(p, fmt.Sprintf("node %s: %s port %d: want 1 to 65535", n.Name, port.what, port.n))
				continue
			}
			addr := net.JoinHostPort(n.Host, strconv.Itoa(port.n))
			if other, taken := addrs[addr]; taken {
				p = append(p, fmt.Sprintf("node %s: %s address %s is already %s", n.Name, port.what, addr, other))
			}
			addrs[addr] = "node " + n.Name + "'s " + port.what + " address"
		}
	}
	if o.TLS != nil {
		for _, f := range []struct{ what, path string }{{"TLS CA", o.TLS.CA}, {"TLS certificate", o.TLS.Cert}, {"TLS key", o.TLS.Key}} {
			if !validPath(f.path) {
				p = append(p, fmt.Sprintf("%s file %q: want a path without quotes, backslashes or line breaks", f.what, f.path))
			}
		}
	}
	seen := map[string]bool{}
	for _, g := range o.Gateways {
		if !ValidTwin(g) {
			p = append(p, fmt.Sprintf("gateway twin %q: want 1 to 64 lower-case letters, digits or '-'", g))
		}
		if seen[g] {
			p = append(p, fmt.Sprintf("gateway twin %q is listed twice", g))
		}
		seen[g] = true
	}
	if len(p) > 0 {
		return invalidf("%s", strings.Join(p, "; "))
	}
	return nil
}
