package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerorealm/zerorealm/internal/natsconf"
)

// newNATSCommand gives operators the configuration of an authenticated
// NATS cluster.
func newNATSCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Configure an authenticated NATS cluster for realm nodes and twin gateways",
		Args:  noArgs,
	}
	cmd.AddCommand(newNATSConfigCommand(), newNATSGatewayCredsCommand())
	return cmd
}

type natsConfigFlags struct {
	nodes, realms, clientPort, clusterPort int
	out, prefix, storeDir, clusterName     string
	hosts, gateways                        []string
	force                                  bool
	tlsCA, tlsCert, tlsKey                 string
	tlsVerifyClients                       bool
}

func newNATSConfigCommand() *cobra.Command {
	var f natsConfigFlags
	cmd := &cobra.Command{
		Use:   "config --nodes N --out DIR",
		Short: "Write an N-node JetStream cluster's configuration, accounts and credentials",
		Long: `Write, below --out, what an N-node NATS JetStream cluster needs so that
every connection authenticates and each one may do only its part:

  servers/<node>.conf      one nats-server configuration per node (run it with
                           nats-server -c <node>.conf): client and route
                           listeners, routes authenticated with a password of
                           their own, the JetStream store, and the operator and
                           account JWTs it trusts (decentralized JWT auth,
                           resolver MEMORY). It lists no user.
  realms/realm-<i>.creds   one NATS user per realm node (zerorealm serve
                           --nats URLS --nats-creds FILE): the prefix's subjects,
                           the JetStream API and its inboxes.
  gateways/<twin>.creds    one NATS user per --gateway (zerorealm gateway
                           --nats URLS --nats-creds FILE): exactly its own
                           twin's subjects, as on the embedded server.
  keys/operator.nk         the operator's seed, which signs the accounts;
  keys/account.nk          the ZeroRealm account's seed, which signs users
                           (zerorealm nats gateway-creds issues a new gateway's
                           credentials with it, offline, while the servers run);
  keys/system-account.nk   the system account's seed.

Every file is written with mode 0600. The keys folder never leaves this
machine; each other file goes only to the server, realm node or gateway it
names. Nodes that share a host get consecutive ports. It refuses to replace
existing files unless --force.

With --tls-ca, --tls-cert and --tls-key (paths on the servers, "{node}"
standing for the node's name), every server speaks only TLS to clients and
on routes, where servers verify each other's certificate: each node's must
be valid for its host and for server and client authentication. Without
them, client authentication is still a signed nonce (no secret crosses the
network), but the route password and all traffic travel in clear.
--tls-verify-clients also makes clients present a certificate the CA
signed (zerorealm serve --nats-tls-cert).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeNATSConfig(f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 3, "number of NATS servers")
	fl.StringVar(&f.out, "out", "", "folder to write the files to")
	fl.StringVar(&f.prefix, "prefix", "zr", "the realm's subject prefix, which permissions are written in")
	fl.StringSliceVar(&f.hosts, "host", nil, "address each node listens on and is reached at: one per node, or one for all (default 127.0.0.1, a cluster on this machine to try)")
	fl.IntVar(&f.clientPort, "client-port", 4222, "client port")
	fl.IntVar(&f.clusterPort, "cluster-port", 6222, "route port between the servers")
	fl.StringVar(&f.storeDir, "store-dir", "/var/lib/nats", "folder on each server under which its JetStream store (<store-dir>/<node>) lives")
	fl.IntVar(&f.realms, "realms", 0, "number of realm node users (default: one per NATS server)")
	fl.StringSliceVar(&f.gateways, "gateway", nil, "twin to issue gateway credentials for (repeat, or comma-separated)")
	fl.StringVar(&f.clusterName, "cluster-name", "zerorealm", "cluster name, also the operator's name")
	fl.BoolVar(&f.force, "force", false, "replace existing files (every credential issued under the old keys stops working)")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "PEM authorities file on each server (turns TLS on, with --tls-cert and --tls-key)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "each server's PEM certificate, e.g. /etc/nats/{node}.pem")
	fl.StringVar(&f.tlsKey, "tls-key", "", "each server's PEM key, e.g. /etc/nats/{node}-key.pem")
	fl.BoolVar(&f.tlsVerifyClients, "tls-verify-clients", false, "clients must also present a certificate the CA signed")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func writeNATSConfig(f natsConfigFlags, stdout io.Writer) error {
	nodes, err := natsNodes(f)
	if err != nil {
		return err
	}
	if f.realms < 0 {
		return usagef("--realms %d: want at least one", f.realms)
	}
	opts := natsconf.Options{Nodes: nodes, ClusterName: f.clusterName, Prefix: f.prefix, Realms: f.realms, Gateways: f.gateways}
	switch {
	case f.tlsCA != "" || f.tlsCert != "" || f.tlsKey != "":
		if f.tlsCA == "" || f.tlsCert == "" || f.tlsKey == "" {
			return usagef("TLS needs --tls-ca, --tls-cert and --tls-key together")
		}
		opts.TLS = &natsconf.TLS{CA: f.tlsCA, Cert: f.tlsCert, Key: f.tlsKey, VerifyClients: f.tlsVerifyClients}
	case f.tlsVerifyClients:
		return usagef("--tls-verify-clients needs --tls-ca, --tls-cert and --tls-key")
	}
	c, err := natsconf.Generate(opts)
	if err != nil {
		return natsconfUsage(err)
	}
	if err := c.Write(f.out, f.force); err != nil {
		return natsconfUsage(err)
	}
	fmt.Fprintf(stdout, "wrote the configuration of a %d-node NATS cluster to %s:\n", len(nodes), f.out)
	for _, file := range c.Files {
		var where string
		switch file.For {
		case natsconf.Server:
			where = "NATS server " + file.Owner + ": nats-server -c " + path.Base(file.Path)
		case natsconf.RealmNode:
			where = "realm node " + file.Owner + ": zerorealm serve --nats-creds"
		case natsconf.Gateway:
			where = "gateway of twin " + file.Owner + ": zerorealm gateway --nats-creds"
		default:
			where = "operator only: never copy it off this machine"
		}
		fmt.Fprintf(stdout, "  %-28s %s\n", file.Path, where)
	}
	fmt.Fprintf(stdout, "realm nodes and gateways: --nats %s\n", strings.Join(c.ClientURLs, ","))
	return nil
}

// natsNodes lays the nodes out on the hosts given.
func natsNodes(f natsConfigFlags) ([]natsconf.Node, error) {
	if f.nodes < 1 || f.nodes > 64 {
		return nil, usagef("--nodes %d: want 1 to 64 NATS servers", f.nodes)
	}
	hosts := f.hosts
	switch len(hosts) {
	case 0:
		hosts = []string{"127.0.0.1"}
	case 1, f.nodes:
	default:
		return nil, usagef("%d --host values for %d nodes: give one per node, or one for all", len(hosts), f.nodes)
	}
	nodes := make([]natsconf.Node, f.nodes)
	onHost := map[string]int{} // nodes placed so far on each host
	for i := range nodes {
		host := hosts[min(i, len(hosts)-1)]
		k := onHost[host]
		onHost[host]++
		name := fmt.Sprintf("n%d", i+1)
		nodes[i] = natsconf.Node{Name: name, Host: host, ClientPort: f.clientPort + k, ClusterPort: f.clusterPort + k,
			StoreDir: path.Join(filepath.ToSlash(f.storeDir), name)}
	}
	return nodes, nil
}

func newNATSGatewayCredsCommand() *cobra.Command {
	var twinID, accountKey, out, prefix string
	var force bool
	cmd := &cobra.Command{
		Use:   "gateway-creds --twin ID --account-key FILE --out FILE",
		Short: "Issue a new gateway's NATS credentials, offline, from the account key",
		Long: `Issue the NATS credentials (.creds, mode 0600) of a gateway for one twin,
signed with the ZeroRealm account's seed (keys/account.nk of "zerorealm nats
config"). The running servers admit it at once: they trust the account, not
a list of users, so none is restarted or reconfigured. The user may use
exactly its own twin's subjects.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seed, err := os.ReadFile(accountKey)
			if err != nil {
				return usagef("read the account key: %v", err)
			}
			creds, err := natsconf.IssueGatewayCreds(seed, prefix, twinID)
			if err != nil {
				return natsconfUsage(err)
			}
			file := natsconf.File{Path: filepath.Base(out), Data: creds, For: natsconf.Gateway, Owner: twinID}
			if err := natsconf.WriteFiles(filepath.Dir(out), []natsconf.File{file}, force); err != nil {
				return natsconfUsage(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued NATS credentials for the gateway of twin %s in %s (zerorealm gateway --nats-creds)\n", twinID, out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&twinID, "twin", "", "twin id")
	fl.StringVar(&accountKey, "account-key", "", "the ZeroRealm account's seed (keys/account.nk)")
	fl.StringVar(&out, "out", "", "credentials file to write")
	fl.StringVar(&prefix, "prefix", "zr", "the realm's subject prefix")
	fl.BoolVar(&force, "force", false, "replace an existing file")
	for _, name := range []string{"twin", "account-key", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// natsconfUsage is a usage error (exit 2) for a mistake in the options or
// a file in the way, in natsconf's words; any other failure stays itself.
func natsconfUsage(err error) error {
	var oe *natsconf.OptionError
	if errors.As(err, &oe) {
		return usagef("%s", oe.Detail)
	}
	return err
}
