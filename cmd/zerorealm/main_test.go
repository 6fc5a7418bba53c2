package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zerorealm/zerorealm/realm/realmtest"
	"github.com/zerorealm/zerorealm/scenes"
)

// syncBuffer is a goroutine-safe writer the command prints to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestUsageMistakesExitTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "file")
	if err := os.WriteFile(aFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("listen: [unclosed\n"), 0o600)
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("lisen: localhost:1\n"), 0o600)

	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string // in the one line printed
	}{
		{"unknown flag", []string{"--bogus"}, nil, "unknown flag: --bogus"},
		{"unreadable config", []string{"--config", filepath.Join(dir, "missing.yaml")}, nil, "cannot read config file"},
		{"config not YAML", []string{"--config", badYAML}, nil, "is not valid YAML"},
		{"config unknown setting", []string{"--config", unknownKey}, nil, `unknown setting "lisen"`},
		{"data dir under a file", []string{"--data", filepath.Join(aFile, "data")}, nil, "cannot be written"},
		{"data dir from env under a file", nil, map[string]string{"ZR_DATA": filepath.Join(aFile, "data")}, "cannot be written"},
		{"bad listen address", []string{"--data", dir, "--listen", "nonsense"}, nil, "listen address"},
		{"bad log level", []string{"--data", dir, "--log-level", "loud"}, nil, "log level"},
		{"bad nats url", []string{"--data", dir, "--nats", "http//x"}, nil, "NATS URL"},
		{"scenes dir missing", []string{"--data", dir, "--scenes", filepath.Join(dir, "nope")}, nil, "scenes folder"},
		{"extra argument", []string{"serve", "now"}, nil, "unknown command"},
		{"bootstrap roles without admin", []string{"--data", dir, "--bootstrap-admin-roles", "operator,supervisor"}, nil, "must include the admin role"},
		{"nats creds file missing", []string{"--data", dir, "--nats", "nats://127.0.0.1:4222", "--nats-creds", filepath.Join(dir, "missing.creds")}, nil, "NATS credentials file"},
		{"nats creds not a creds file", []string{"--data", dir, "--nats", "nats://127.0.0.1:4222"}, map[string]string{"ZR_NATS_CREDS": aFile}, "not a NATS user JWT"},
		{"nats nkey not a seed", []string{"--data", dir, "--nats", "nats://127.0.0.1:4222", "--nats-nkey", aFile}, nil, "NATS nkey seed file"},
		{"nats tls cert without key", []string{"--data", dir, "--nats", "nats://127.0.0.1:4222", "--nats-tls-cert", aFile}, nil, "needs its key"},
		{"nats creds without a cluster", []string{"--data", dir, "--nats-creds", aFile}, nil, "for a NATS cluster"},
		{"bootstrap switch not a boolean", []string{"--data", dir}, map[string]string{"ZR_BOOTSTRAP_ADMIN": "maybe"}, "bootstrap-admin"},
		{"keys of a missing data dir", []string{"keys", "list", "--data", filepath.Join(dir, "nonexistent")}, nil, "no realm data directory at"},
		{"keys rotate in a missing data dir", []string{"keys", "rotate", "--data", filepath.Join(dir, "nonexistent")}, nil, "no realm data directory at"},
		{"keys export of a data dir without keys", []string{"keys", "export-public", "--data", dir}, nil, "no keys in"},
		{"receipt verify without a file", []string{"receipt", "verify"}, nil, "takes one FILE"},
		{"receipt verify of a missing file", []string{"receipt", "verify", filepath.Join(dir, "missing.json")}, nil, "read the receipt"},
		{"receipt verify with a signer that is no address", []string{"receipt", "verify", "--signer", "nope", aFile}, nil, `--signer "nope" is not an address`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr syncBuffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("run(%q) = %d, want %d; stderr: %s", tc.args, code, exitUsage, stderr.String())
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "zerorealm: ") || !strings.Contains(out, tc.want) {
				t.Fatalf("run(%q) printed %q, want one line starting with %q containing %q", tc.args, out, "zerorealm: ", tc.want)
			}
		})
	}
	// A refused keys command leaves the disk as it was.
	for _, made := range []string{filepath.Join(dir, "nonexistent"), filepath.Join(dir, "keys")} {
		if _, err := os.Stat(made); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused keys command made %s (stat: %v)", made, err)
		}
	}
}

// TestFlagPlaceholdersAreNames checks every flag of every command: the
// value placeholder --help prints (pflag takes a back-quoted word of the
// usage string for it) is a plain word, never a phrase.
func TestFlagPlaceholdersAreNames(t *testing.T) {
	word := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$|^$`)
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		for _, fl := range []*pflag.FlagSet{c.LocalFlags(), c.PersistentFlags()} {
			fl.VisitAll(func(f *pflag.Flag) {
				checked++
				if name, _ := pflag.UnquoteUsage(f); !word.MatchString(name) {
					t.Errorf("%s --%s: --help shows the placeholder %q", c.CommandPath(), f.Name, name)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
	if checked < 50 {
		t.Fatalf("checked %d flags: the walk missed commands", checked)
	}
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"gateway", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("gateway --help = %d: %s", code, stderr.String())
	}
	if help := stdout.String(); !strings.Contains(help, "--creds FILE") || strings.Contains(help, "`") {
		t.Fatalf("gateway --help:\n%s", help)
	}
}

var readyLine = regexp.MustCompile(`ready at (http://\S+) \(node (\S+),`)

// startRealm runs the command in-process and returns its URL, node and a
// stop function that returns the exit status.
func startRealm(t *testing.T, args []string) (url, node string, stop func() int) {
	t.Helper()
	url, node, _, stop = startRealmStderr(t, args)
	return url, node, stop
}

// startRealmStderr is startRealm that also returns what the command wrote
// to standard error.
func startRealmStderr(t *testing.T, args []string) (url, node string, stderr *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = new(syncBuffer)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, pw, stderr)
		pw.Close()
	}()
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
		close(found)
	}()
	select {
	case m, ok := <-found:
		if !ok {
			cancel()
			t.Fatalf("command exited before ready: %s", stderr.String())
		}
		url, node = m[1], m[2]
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("not ready after 30s: %s", stderr.String())
	}
	return url, node, stderr, func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatal("realm did not stop after its context ended")
			return -1
		}
	}
}

// getJSON fetches a URL and decodes its JSON body, as the realm's own
// tests do.
var getJSON = realmtest.Get

// TestServeRestartKeepsState runs the realm on a data dir, stops it, starts
// it again on the same dir and checks it is the same node with the same
// audit chain, continued.
func TestServeRestartKeepsState(t *testing.T) {
	data := t.TempDir()
	t.Setenv("ZR_DATA", data) // exercise the environment path for one flag
	args := []string{"--listen", "127.0.0.1:0", "--nats-listen", "", "--log-level", "warn"}

	url, node, stop := startRealm(t, args)
	var health map[string]any
	if code := getJSON(t, url+"/healthz", &health); code != http.StatusOK || health["status"] != "ok" {
		t.Fatalf("GET /healthz = %d %v, want 200 ok", code, health)
	}
	if code := getJSON(t, url+"/metrics", nil); code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200", code)
	}
	url2, stop2 := restartRealm(t, args, node, stop)
	defer stop2()
	type chain struct {
		Node   string `json:"node"`
		Events int    `json:"events"`
	}
	var verify struct {
		OK     bool    `json:"ok"`
		Chains []chain `json:"chains"`
	}
	// Each start audits the scenes it serves (one scene shipped): two
	// starts, one chain of two events, verified across the restart. The
	// second start's event is stored asynchronously, so wait for it. The
	// route is rate-limited per client address: a 429 is waited out too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code := getJSON(t, url2+"/v1/audit/verify", &verify)
		if code == http.StatusTooManyRequests && time.Now().Before(deadline) {
			time.Sleep(time.Second)
			continue
		}
		if code != http.StatusOK {
			t.Fatalf("GET /v1/audit/verify = %d", code)
		}
		if len(verify.Chains) == 1 && verify.Chains[0].Events >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !verify.OK || len(verify.Chains) != 1 || verify.Chains[0].Node != node || verify.Chains[0].Events != 2 {
		t.Fatalf("verify after restart = %+v, want one intact chain of node %s with 2 events", verify, node)
	}
}

func TestBadScenesExitTwoListingEveryProblem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "scenes")
	if err := os.MkdirAll(filepath.Join(dir, "foundry"), 0o700); err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile(filepath.Join("..", "..", "scenes", "testdata", "three-errors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policies, err := fs.ReadFile(scenes.Builtin(), "foundry/policies.cedar")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "foundry", "scene.yaml"), bad, 0o600)
	os.WriteFile(filepath.Join(dir, "foundry", "policies.cedar"), policies, 0o600)

	var stdout, stderr syncBuffer
	args := []string{"--data", t.TempDir(), "--scenes", dir, "--listen", "127.0.0.1:0", "--nats-listen", "", "--log-level", "error"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
		t.Fatalf("run with a bad scene = %d, want %d; stderr: %s", code, exitUsage, stderr.String())
	}
	for _, want := range []string{"3 problem(s)", "foundry/scene.yaml:9:", "foundry/scene.yaml:13:", "foundry/scene.yaml:21:"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not contain %q", stderr.String(), want)
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("version exit = %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "zerorealm ") {
		t.Fatalf("version printed %q, want it to start with %q", stdout.String(), "zerorealm ")
	}
}

// TestServeProfilesOnTheirOwnAddress: --pprof-listen serves the runtime
// profiles on the address given, and never on the realm's public one.
func TestServeProfilesOnTheirOwnAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pprofAddr := ln.Addr().String()
	ln.Close()
	url, _, stop := startRealm(t, []string{"serve", "--listen", "127.0.0.1:0", "--nats-listen", "", "--data", t.TempDir(),
		"--log-level", "warn", "--pprof-listen", pprofAddr})
	defer stop()
	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("GET heap profile = %d %.80q, want 200 and a heap profile", resp.StatusCode, body)
	}
	resp, err = http.Get(url + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("the realm's public address serves runtime profiles")
	}
}

// TestSecondRealmOnOneDataDirExitsTwo starts a realm, then another on the
// same data directory: the second must stop before touching the store, with
// status 2 and one line naming the directory and the process that holds it.
// Once the first has stopped, the directory is free again.
func TestSecondRealmOnOneDataDirExitsTwo(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--listen", "127.0.0.1:0", "--nats-listen", "", "--log-level", "error"}
	_, node, stop := startRealm(t, args)

	var stdout, stderr syncBuffer
	if code := run(context.Background(), args, &stdout, &stderr); code != exitUsage {
		t.Fatalf("second realm on %s = %d, want %d; stderr: %s", data, code, exitUsage, stderr.String())
	}
	out := strings.TrimSpace(stderr.String())
	pid := "process " + strconv.Itoa(os.Getpid())
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, data) || !strings.Contains(out, pid) {
		t.Fatalf("second realm printed %q, want one line naming %s and %q", out, data, pid)
	}
	_, stop2 := restartRealm(t, args, node, stop)
	stop2()
}

// restartRealm stops a realm started by startRealm, expecting status 0,
// starts it again with the same arguments and checks it is the same node
// (its name is kept in the data dir).
func restartRealm(t *testing.T, args []string, node string, stop func() int) (url string, stop2 func() int) {
	t.Helper()
	if code := stop(); code != 0 {
		t.Fatalf("exit status after stop = %d, want 0", code)
	}
	url, node2, stop2 := startRealm(t, args)
	if node2 != node {
		stop2()
		t.Fatalf("node after restart = %q, want %q (kept in the data dir)", node2, node)
	}
	return url, stop2
}
