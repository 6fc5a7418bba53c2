package natstest

import (
	"crypto/rand"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterName begins the name of every cluster RunCluster starts; the
// rest is random (clusterName). A node keeps dialling a stopped peer's
// cluster port, which another test's cluster may take meanwhile: with one
// name for all, the two clusters would merge, and with a name of its own,
// each refuses the other's routes.
const ClusterName = "zr-test"

// clusterName is a name for one cluster: ClusterName and random letters.
func clusterName() string { return ClusterName + "-" + rand.Text()[:10] }

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

// RunCluster starts an n-node JetStream cluster named ClusterName-<random> on
// loopback (servers n1..nN, each with its own store directory) and returns
// once the JetStream meta leader is elected and every node is current, so
// replicated streams can be created immediately.
//
// The cluster ports are chosen by FreePorts and free only until the
// servers listen on them: another process, or an outgoing connection of a
// test running beside this one, may take one in between. A server that
// cannot listen says so at once, so the cluster is started again on fresh
// ports, up to clusterAttempts times, instead of waiting out startTimeout.
func RunCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("RunCluster(%d): need at least one node", n)
	}
	servers, err := onFreshPorts(t, n, func(ports []int) ([]*server.Server, error) { return startCluster(t, ports) })
	if err != nil {
		t.Fatalf("RunCluster(%d): %v", n, err)
	}
	waitForMetaLeader(t, servers)
	return servers
}

// clusterAttempts bounds how often a cluster is started again after one
// of its ports was taken.
const clusterAttempts = 3

// onFreshPorts starts servers on n ports from FreePorts, and again on
// fresh ones when they do not start, up to clusterAttempts times.
func onFreshPorts(t testing.TB, n int, start func(ports []int) ([]*server.Server, error)) ([]*server.Server, error) {
	t.Helper()
	var err error
	for attempt := range clusterAttempts {
		var servers []*server.Server
		if servers, err = start(FreePorts(t, n)); err == nil {
			return servers, nil
		}
		if attempt < clusterAttempts-1 {
			t.Logf("natstest: starting again on fresh ports: %v", err)
		}
	}
	return nil, err
}

// startCluster starts one server per port, routed to each other. If one
// does not start, it shuts down those that did and says why.
func startCluster(t testing.TB, ports []int) ([]*server.Server, error) {
	t.Helper()
	routes := make([]string, len(ports))
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	routeURLs := server.RoutesFromStr(strings.Join(routes, ","))
	base := t.TempDir()
	cluster := clusterName()
	opts := make([]*server.Options, len(ports))
	for i, port := range ports {
		name := fmt.Sprintf("n%d", i+1)
		opts[i] = &server.Options{
			ServerName: name,
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(base, name),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: cluster,
				Host: "127.0.0.1",
				Port: port,
			},
			Routes: routeURLs,
		}
	}
	return launchAll(t, opts)
}

// launchAll starts a server for each of opts, shut down in t.Cleanup. If
// one does not start, it shuts down those that did and says why.
func launchAll(t testing.TB, opts []*server.Options) ([]*server.Server, error) {
	t.Helper()
	servers := make([]*server.Server, 0, len(opts))
	for _, o := range opts {
		s, err := launch(o)
		if err != nil {
			for _, started := range servers {
				shutdown(started)
			}
			return nil, err
		}
		servers = append(servers, s)
	}
	for _, s := range servers {
		t.Cleanup(func() { shutdown(s) })
	}
	return servers, nil
}

// RunConfigFiles starts one server per nats-server configuration file (a
// cluster an operator would run, e.g. one written by package natsconf) and,
// when they form a JetStream cluster, returns once its meta leader is
// elected and every node is current.
func RunConfigFiles(t testing.TB, files ...string) []*server.Server {
	t.Helper()
	servers, err := startConfigFiles(t, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) > 1 {
		waitForMetaLeader(t, servers)
	}
	return servers
}

// RunConfigFilesOnFreePorts is RunConfigFiles for configurations written
// for ports chosen ahead (FreePorts): write is given n free ports and
// returns the configuration files it wrote for them, in a directory of
// its own on every call. A port taken by another process before its
// server listened makes the servers that started stop, and the cluster
// is written and started again on fresh ports, as RunCluster does, up to
// clusterAttempts times.
func RunConfigFilesOnFreePorts(t testing.TB, n int, write func(ports []int) (files []string)) []*server.Server {
	t.Helper()
	servers, err := onFreshPorts(t, n, func(ports []int) ([]*server.Server, error) { return startConfigFiles(t, write(ports)) })
	if err != nil {
		t.Fatalf("RunConfigFilesOnFreePorts: %v", err)
	}
	if len(servers) > 1 {
		waitForMetaLeader(t, servers)
	}
	return servers
}

// startConfigFiles starts one server per configuration file. If one does
// not start, it shuts down those that did and says why; a file that is
// not a configuration fails the test.
func startConfigFiles(t testing.TB, files []string) ([]*server.Server, error) {
	t.Helper()
	opts := make([]*server.Options, len(files))
	for i, f := range files {
		o, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("nats-server configuration %s: %v", f, err)
		}
		o.NoLog, o.NoSigs = true, true
		opts[i] = o
	}
	return launchAll(t, opts)
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
	s, err := launch(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(s) })
	return s
}

// launch starts a server and waits until it accepts clients. A server
// that reports a fatal error (a port it cannot listen on) is shut down at
// once and the error says what it reported.
func launch(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("server.NewServer(%s): %w", opts.ServerName, err)
	}
	log := &startLog{}
	s.SetLogger(log, false, false)
	s.Start()
	deadline := time.Now().Add(startTimeout)
	for !s.ReadyForConnections(readyPoll) {
		if fatal := log.fatal(); fatal != "" || time.Now().After(deadline) {
			shutdown(s)
			if fatal == "" {
				fatal = fmt.Sprintf("not ready for connections after %v", startTimeout)
			}
			return nil, fmt.Errorf("server %s: %s", opts.ServerName, fatal)
		}
	}
	return s, nil
}

// readyPoll is how often launch looks for a fatal error while it waits.
const readyPoll = 100 * time.Millisecond

func shutdown(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// startLog is a server's logger in tests: silent, except that it keeps
// the first fatal error, which a server without a logger would drop (a
// listener that fails only logs, and the server then never becomes
// ready).
type startLog struct {
	mu    sync.Mutex
	first string
}

func (l *startLog) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == "" {
		l.first = fmt.Sprintf(format, v...)
	}
}

func (l *startLog) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

func (*startLog) Noticef(string, ...any) {}
func (*startLog) Warnf(string, ...any)   {}
func (*startLog) Errorf(string, ...any)  {}
func (*startLog) Debugf(string, ...any)  {}
func (*startLog) Tracef(string, ...any)  {}

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
//
// The cluster port is free only until the server listens on it again:
// another process may take it while the node is down. Then the node
// comes back on a port it chooses itself (it routes to the running
// servers, and gossip tells them where it is) rather than fail the test.
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
		s, err := launch(opts)
		if err != nil && strings.Contains(err.Error(), "router port") {
			t.Logf("natstest: %v; starting %s on a cluster port of its own choosing", err, opts.ServerName)
			again := *opts
			again.Cluster.Port = server.RANDOM_PORT
			s, err = launch(&again)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(s) })
		return s
	}
}
