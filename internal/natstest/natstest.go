package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterName is the cluster name RunCluster gives its servers.
const ClusterName = "zr-test"

// startTimeout bounds how long a server may take to accept clients and how
// long a cluster may take to elect its JetStream meta leader. Generous,
// because test machines are shared and loaded.
const startTimeout = 30 * time.Second

// RunServer starts a single-node JetStream server on a random loopback port
// with its data in a fresh t.TempDir().
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerAt(t, t.TempDir())
}

// RunServerAt starts a single-node JetStream server whose file store lives
// in dir, so a test can stop it and start another on the same data.
// Shutting the returned server down early is fine: the cleanup tolerates it.
func RunServerAt(t testing.TB, dir string) *server.Server {
	t.Helper()
	return start(t, &server.Options{
		ServerName: "standalone",
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
}

// RunCluster starts an n-node JetStream cluster named ClusterName on
// loopback (servers n1..nN, each with its own store directory) and returns
// once the JetStream meta leader is elected and every node is current, so
// replicated streams can be created immediately.
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("RunCluster(%d): need at least one node", n)
	}
	ports := FreePorts(t, n)
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	routeURLs := server.RoutesFromStr(strings.Join(routes, ","))
	base := t.TempDir()
	servers := make([]*server.Server, n)
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		servers[i] = start(t, &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(base, name),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: ClusterName,
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes: routeURLs,
		})
	}
	waitForMetaLeader(t, servers)
	return servers
}

// RunConfigFiles starts one server per nats-server configuration file (a
// cluster an operator would run, e.g. one written by package natsconf) and,
// when they form a JetStream cluster, returns once its meta leader is
// elected and every node is current.
func RunConfigFiles(t testing.TB, files ...string) []*server.Server {
	t.Helper()
	servers := make([]*server.Server, len(files))
	for i, f := range files {
		opts, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("nats-server configuration %s: %v", f, err)
		}
		opts.NoLog, opts.NoSigs = true, true
		servers[i] = start(t, opts)
	}
	if len(servers) > 1 {
		waitForMetaLeader(t, servers)
	}
	return servers
}

// ClusterURLs returns the client URLs of servers, comma-separated, as
// nats.Connect accepts them.
func ClusterURLs(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Connect connects to urls, reconnecting forever (a test decides when to
// give up, not the client), and closes the connection in t.Cleanup.
func Connect(t testing.TB, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.Name(t.Name()),
	)
	if err != nil {
		t.Fatalf("nats.Connect(%q): %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("server.NewServer(%s): %v", opts.ServerName, err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(startTimeout) {
		t.Fatalf("server %s not ready for connections after %v", opts.ServerName, startTimeout)
	}
	return s
}

// FreePorts reserves n distinct loopback ports by holding listeners open
// until all are chosen. Cluster routes (and a configuration file written
// for them) must be known before the servers start, which rules out
// letting each server pick its own.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	listeners := make([]net.Listener, n)
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve port: %v", err)
		}
		listeners[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range listeners {
		l.Close()
	}
	return ports
}

func waitForMetaLeader(t testing.TB, servers []*server.Server) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		// Only the meta leader reports peers, and it counts only peers
		// whose statistics it has received: then replicated streams fit.
		leaders, current := 0, 0
		for _, s := range servers {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(servers) {
				leaders++
			}
			if s.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == len(servers) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("JetStream cluster %s: no meta leader with %d current peers after %v", servers[0].ClusterName(), len(servers), startTimeout)
}

// ConnectInProcess connects to srv without a socket, as the realm does to
// its embedded server, so benchmarks measure what the realm pays.
func ConnectInProcess(t testing.TB, srv *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("nats.Connect(in-process): %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StopClusterNode shuts down servers[i], a node of a RunCluster cluster,
// and returns a function that starts it again with the same name, cluster
// port and store directory, as a restarted process would come back. The
// restarted server is shut down in t.Cleanup.
func StopClusterNode(t testing.TB, servers []*server.Server, i int) (restart func() *server.Server) {
	t.Helper()
	srv := servers[i]
	// Routes to the servers still running (a stopped one has no cluster
	// address); gossip finds the others when they return.
	var routes []string
	for _, s := range servers {
		if addr := s.ClusterAddr(); addr != nil {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", addr.Port))
		}
	}
	opts := &server.Options{
		ServerName: srv.Name(),
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		// StoreDir is the server's JetStream directory, inside the one
		// it was given.
		StoreDir: filepath.Dir(srv.StoreDir()),
		NoLog:    true,
		NoSigs:   true,
		Cluster: server.ClusterOpts{
			Name: srv.ClusterName(),
			Host: "127.0.0.1",
			Port: srv.ClusterAddr().Port,
		},
		Routes: server.RoutesFromStr(strings.Join(routes, ",")),
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	return func() *server.Server {
		t.Helper()
		return start(t, opts)
	}
}
