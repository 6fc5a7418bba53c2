package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zerorealm/zerorealm/internal/natsconf"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/natstest"
	"github.com/zerorealm/zerorealm/realm"
)

// TestNATSConfigCommand writes a cluster's configuration for two hosts,
// refuses to overwrite it without --force, and issues a gateway's
// credentials from the account key it wrote.
func TestNATSConfigCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "nats")
	args := []string{"nats", "config", "--nodes", "3", "--out", out, "--host", "10.0.0.1,10.0.0.2,10.0.0.2", "--gateway", "press-1", "--store-dir", "/srv/nats"}
	var stdout, stderr syncBuffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("nats config = %d: %s", code, stderr.String())
	}
	for _, want := range []string{"servers/n1.conf", "realms/realm-3.creds", "gateways/press-1.creds", "keys/account.nk", "operator only",
		"--nats nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.2:4223"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output does not mention %q:\n%s", want, stdout.String())
		}
	}
	// n3 shares n2's host, so it takes the next ports.
	opts, err := server.ProcessConfigFile(filepath.Join(out, "servers", "n3.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Host != "10.0.0.2" || opts.Port != 4223 || opts.Cluster.Port != 6223 || opts.StoreDir != "/srv/nats/n3" {
		t.Errorf("n3: %s:%d cluster port %d store %s; want 10.0.0.2:4223, 6223, /srv/nats/n3", opts.Host, opts.Port, opts.Cluster.Port, opts.StoreDir)
	}
	if p := (natsembed.ClientAuth{CredsFile: filepath.Join(out, "realms", "realm-1.creds")}).Problems(); p != nil {
		t.Errorf("realm-1.creds: %v", p)
	}

	operatorKey, _ := os.ReadFile(filepath.Join(out, "keys", "operator.nk"))
	stderr = syncBuffer{}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--force") {
		t.Fatalf("nats config over existing files = %d %q, want exit 2 naming --force", code, stderr.String())
	}
	if again, _ := os.ReadFile(filepath.Join(out, "keys", "operator.nk")); string(again) != string(operatorKey) {
		t.Fatal("a refused run replaced the operator key")
	}

	creds := filepath.Join(t.TempDir(), "conveyor-1.creds")
	issue := []string{"nats", "gateway-creds", "--twin", "conveyor-1", "--account-key", filepath.Join(out, "keys", "account.nk"), "--out", creds}
	if code := run(context.Background(), issue, &stdout, &stderr); code != 0 {
		t.Fatalf("nats gateway-creds = %d: %s", code, stderr.String())
	}
	if p := (natsembed.ClientAuth{CredsFile: creds}).Problems(); p != nil {
		t.Errorf("issued creds: %v", p)
	}
	if st, err := os.Stat(creds); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("issued creds: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	mistakes := []struct {
		args []string
		want string
	}{
		{[]string{"nats", "config", "--nodes", "3", "--out", t.TempDir(), "--host", "a,b"}, "one per node"},
		{[]string{"nats", "config", "--nodes", "0", "--out", t.TempDir()}, "--nodes 0"},
		{[]string{"nats", "config", "--out", t.TempDir(), "--tls-ca", "ca.pem", "--tls-cert", "{node}.pem"}, "together"},
		{[]string{"nats", "config", "--out", t.TempDir(), "--tls-verify-clients"}, "--tls-verify-clients needs"},
		{[]string{"nats", "config", "--out", t.TempDir(), "--gateway", "Press.1"}, "gateway twin"},
		{[]string{"nats", "gateway-creds", "--twin", "press-1", "--account-key", filepath.Join(out, "keys", "operator.nk"), "--out", filepath.Join(t.TempDir(), "x.creds")}, "not an account seed"},
		{[]string{"nats", "gateway-creds", "--twin", "press-1", "--account-key", filepath.Join(out, "keys", "account.nk"), "--out", creds}, "--force"},
	}
	for _, m := range mistakes {
		stderr = syncBuffer{}
		code := run(context.Background(), m.args, &stdout, &stderr)
		line := strings.TrimSpace(stderr.String())
		if code != exitUsage || strings.Contains(line, "\n") || !strings.Contains(line, m.want) {
			t.Errorf("run(%q) = %d %q, want exit 2 with one line about %q", m.args, code, line, m.want)
		}
	}
}

// TestGatewayReconnectsToAnAuthenticatedCluster runs `zerorealm gateway`
// with the .creds `nats config` wrote against a server started from the
// same configuration, restarts the server, and sees the gateway come back
// under its credentials.
func TestGatewayReconnectsToAnAuthenticatedCluster(t *testing.T) {
	dir := t.TempDir()
	// Written again, in a directory of its own, if a port it names was
	// taken before the server listened.
	var (
		c         *natsconf.Cluster
		out, conf string
	)
	srv := natstest.RunConfigFilesOnFreePorts(t, 2, func(ports []int) []string {
		attempt := t.TempDir()
		var err error
		c, err = natsconf.Generate(natsconf.Options{Gateways: []string{"press-1"}, Nodes: []natsconf.Node{
			{Name: "n1", Host: "127.0.0.1", ClientPort: ports[0], ClusterPort: ports[1], StoreDir: filepath.Join(attempt, "store")}}})
		if err != nil {
			t.Fatal(err)
		}
		out = filepath.Join(attempt, "nats")
		if err := c.Write(out, false); err != nil {
			t.Fatal(err)
		}
		conf = filepath.Join(out, "servers", "n1.conf")
		return []string{conf}
	})[0]
	enrollment, err := realm.EnrollGateway(filepath.Join(dir, "realm"), "", "zr", "press-1", "")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(enrollment)
	enrollFile := filepath.Join(dir, "press-1.json")
	if err := os.WriteFile(enrollFile, data, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"gateway", "--creds", enrollFile, "--nats", c.ClientURLs[0],
			"--nats-creds", filepath.Join(out, "gateways", "press-1.creds"), "--log-level", "info"}, &stdout, &stderr)
	}()
	connected := func(s *server.Server) bool {
		conns, err := s.Connz(&server.ConnzOptions{})
		if err != nil {
			return false
		}
		for _, c := range conns.Conns {
			if c.Name == "zerorealm-gateway-press-1" {
				return true
			}
		}
		return false
	}
	waitUntil(t, exited, &stderr, "the gateway to connect", func() bool {
		return strings.Contains(stderr.String(), "gateway running") && connected(srv)
	})
	srv.Shutdown()
	srv.WaitForShutdown()
	again := natstest.RunConfigFiles(t, conf)[0]
	waitUntil(t, exited, &stderr, "the gateway to reconnect with its credentials", func() bool { return connected(again) })
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("gateway exited %d: %s", code, stderr.String())
	}
}

func waitUntil(t *testing.T, exited chan int, stderr *syncBuffer, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case code := <-exited:
			t.Fatalf("waiting for %s: the command exited %d: %s", what, code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, stderr.String())
		}
	}
}
