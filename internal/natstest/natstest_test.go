package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunServerAtKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	srv := RunServerAt(t, dir)
	js, err := jetstream.New(Connect(t, srv.ClientURL()))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	ack, err := js.Publish(ctx, "keep", []byte("x"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	again := RunServerAt(t, dir)
	js2, err := jetstream.New(Connect(t, again.ClientURL()))
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	st, err := js2.Stream(ctx, "KEEP")
	if err != nil {
		t.Fatalf("Stream(KEEP) after restart: %v", err)
	}
	m, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil || string(m.Data) != "x" {
		t.Errorf("GetMsg(%d) after restart = %q, %v; want \"x\"", ack.Sequence, m.Data, err)
	}
}

func TestRunCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	servers := RunCluster(t, 3)
	nc := Connect(t, ClusterURLs(servers))
	if got := nc.ConnectedClusterName(); !strings.HasPrefix(got, ClusterName+"-") || got != servers[1].ClusterName() {
		t.Errorf("ConnectedClusterName() = %q, want %s-<random>, the same on every node", got, ClusterName)
	}
	if a, b := clusterName(), clusterName(); a == b {
		t.Errorf("two clusters are both named %q: a node of one could route to the other", a)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	// An R3 stream can be placed only once all three peers are known.
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3})
	if err != nil {
		t.Fatalf("CreateStream(R3): %v", err)
	}
	if got := len(s.CachedInfo().Cluster.Replicas) + 1; got != 3 {
		t.Errorf("stream peers = %d, want 3", got)
	}
	names := map[string]bool{}
	for _, srv := range servers {
		names[srv.Name()] = true
	}
	for _, want := range []string{"n1", "n2", "n3"} {
		if !names[want] {
			t.Errorf("server names %v lack %q", names, want)
		}
	}
}

// TestClusterOnATakenPortSaysSoAndStopsWhatStarted takes one of a
// cluster's ports before its server listens, as a test running beside
// it may: the start fails at once with the server's reason, instead of
// waiting out startTimeout, and the servers that did start are stopped,
// so that RunCluster can try again on fresh ports.
func TestClusterOnATakenPortSaysSoAndStopsWhatStarted(t *testing.T) {
	ports := FreePorts(t, 3)
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	if err != nil {
		t.Skipf("port %d was taken before the test could take it: %v", ports[2], err)
	}
	defer taken.Close()
	servers, err := startCluster(t, ports)
	if err == nil {
		t.Fatalf("startCluster on a taken port started %d servers", len(servers))
	}
	if !strings.Contains(err.Error(), "n3") || !strings.Contains(err.Error(), "router port") {
		t.Errorf("error = %q; want server n3's reason, its router port", err)
	}
	// n1 and n2 are shut down: their cluster ports are free again.
	for _, p := range ports[:2] {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Errorf("port %d still held after the failed start: %v", p, err)
			continue
		}
		l.Close()
	}
}

// TestRestartOnATakenClusterPortComesBackOnAnother takes a stopped
// node's cluster port, as another process may while it is down: the
// node comes back on a port of its own choosing and rejoins its cluster,
// instead of failing the test.
func TestRestartOnATakenClusterPortComesBackOnAnother(t *testing.T) {
	servers := RunCluster(t, 3)
	port := servers[2].ClusterAddr().Port
	restart := StopClusterNode(t, servers, 2)
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("port %d was taken before the test could take it: %v", port, err)
	}
	defer taken.Close()
	again := restart()
	if got := again.ClusterAddr().Port; got == port {
		t.Fatalf("the restarted node listens on the taken port %d", port)
	}
	if again.Name() != "n3" {
		t.Errorf("restarted %q, want n3", again.Name())
	}
	back := []*server.Server{servers[0], servers[1], again}
	waitForMetaLeader(t, back)
	js, err := jetstream.New(Connect(t, ClusterURLs(back)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "BACK", Subjects: []string{"back"}, Replicas: 3}); err != nil {
		t.Fatalf("an R3 stream with the restarted node: %v", err)
	}
}

// TestConfigFilesOnATakenPortStartAgainOnFreshPorts takes one of the
// ports a cluster's configuration names before its server listens: the
// servers that started stop, and the configuration is written and
// started again on fresh ports.
func TestConfigFilesOnATakenPortStartAgainOnFreshPorts(t *testing.T) {
	var taken net.Listener
	defer func() {
		if taken != nil {
			taken.Close()
		}
	}()
	writes := 0
	servers := RunConfigFilesOnFreePorts(t, 6, func(ports []int) []string {
		writes++
		dir := t.TempDir()
		var routes []string
		for i := range 3 {
			routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[2*i+1]))
		}
		files := make([]string, 3)
		for i := range 3 {
			name := fmt.Sprintf("n%d", i+1)
			conf := fmt.Sprintf("server_name: %s\nlisten: \"127.0.0.1:%d\"\njetstream { store_dir: %q }\n"+
				"cluster { name: written, listen: \"127.0.0.1:%d\", routes: [%s] }\n",
				name, ports[2*i], filepath.Join(dir, name), ports[2*i+1], strings.Join(routes, ", "))
			files[i] = filepath.Join(dir, name+".conf")
			if err := os.WriteFile(files[i], []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if writes == 1 {
			// The last server's cluster port, so that two have started
			// and must be stopped.
			var err error
			if taken, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[5])); err != nil {
				t.Skipf("port %d was taken before the test could take it: %v", ports[5], err)
			}
		}
		return files
	})
	if writes != 2 {
		t.Errorf("the configuration was written %d times, want 2: once, and again after the taken port", writes)
	}
	if len(servers) != 3 || servers[2].ClusterAddr().Port == taken.Addr().(*net.TCPAddr).Port {
		t.Fatalf("%d servers, the last on cluster port %d (taken: %s)", len(servers), servers[len(servers)-1].ClusterAddr().Port, taken.Addr())
	}
}
