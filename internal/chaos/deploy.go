package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natsconf"
)

// Deployment is a running realm: NATS servers (none when the realm runs
// on its embedded store) and realm nodes, all processes of their own.
type Deployment struct {
	Dir    string
	NATS   []*Proc
	Realms []*RealmNode
	// URLs are the NATS client URLs; empty on the embedded store.
	URLs []string
	// creds is the first realm node's NATS credentials, which the harness
	// also uses to ask JetStream who leads a stream.
	creds string
	bins  Binaries
	// scenes is the folder of the workload's scene (testdata/scenes).
	scenes string
	// Gateway is the process of the twin's gateway, and JournalFile its
	// journal of the commands it carried out (`zerorealm gateway
	// --journal`).
	Gateway     *Proc
	JournalFile string
	// Executions, when set, reads what the gateway carried out: the
	// checker holds the twin commands' answers to it.
	Executions func() ([]Execution, error)
}

// RealmNode is one zerorealm serve process.
type RealmNode struct {
	*Proc
	URL     string
	DataDir string
}

// The request deadline every realm node is started with; the checker
// allows answers up to a second past it.
const RequestTimeout = 3 * time.Second

// readyWait bounds how long a started process may take to be ready.
const readyWait = 90 * time.Second

// StartCluster runs a 3-node NATS cluster configured as `zerorealm nats
// config` configures one, realms realm nodes on it, and the gateway of the
// scene's twin, enrolled before the nodes start.
func StartCluster(ctx context.Context, bins Binaries, dir string, realms int) (*Deployment, error) {
	ports, err := freePorts(6 + realms)
	if err != nil {
		return nil, err
	}
	var nodes []natsconf.Node
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		nodes = append(nodes, natsconf.Node{Name: name, Host: "127.0.0.1", ClientPort: ports[2*i], ClusterPort: ports[2*i+1],
			StoreDir: filepath.Join(dir, "nats-store", name)})
	}
	generated, err := natsconf.Generate(natsconf.Options{Nodes: nodes, Realms: realms, Gateways: []string{chaosTwin}})
	if err != nil {
		return nil, err
	}
	confDir := filepath.Join(dir, "nats")
	if err := generated.Write(confDir, false); err != nil {
		return nil, err
	}
	d := &Deployment{Dir: dir, URLs: generated.ClientURLs, bins: bins, creds: filepath.Join(confDir, "realms", "realm-1.creds"), scenes: bins.Scenes}
	for _, n := range nodes {
		p := newProc("nats "+n.Name, filepath.Join(dir, n.Name+".log"), bins.NATSServer, "-c", filepath.Join(confDir, "servers", n.Name+".conf"))
		if err := p.Start(); err != nil {
			d.Stop()
			return nil, err
		}
		d.NATS = append(d.NATS, p)
	}
	urls := make([]string, realms)
	dataDirs := make([]string, realms)
	for i := range urls {
		dataDirs[i] = filepath.Join(dir, fmt.Sprintf("realm%d", i+1))
		// localhost, not 127.0.0.1: passkeys are bound to the relying
		// party id "localhost".
		urls[i] = "http://localhost:" + strconv.Itoa(ports[6+i])
	}
	// The enrollment needs no NATS: it runs while the cluster forms.
	var gatewayCreds string
	enrolled := make(chan error, 1)
	go func() {
		var err error
		gatewayCreds, err = d.enrollGateway(ctx, dataDirs, d.URLs[0])
		enrolled <- err
	}()
	if err := errors.Join(d.waitJetStream(ctx), <-enrolled); err != nil {
		d.Stop()
		return nil, err
	}
	for i := range realms {
		data := dataDirs[i]
		args := d.serveArgs(urls, i, data)
		args = append(args, "--nats", strings.Join(d.URLs, ","), "--nats-creds", filepath.Join(confDir, "realms", fmt.Sprintf("realm-%d.creds", i+1)))
		node := &RealmNode{Proc: newProc(fmt.Sprintf("realm r%d", i+1), filepath.Join(dir, fmt.Sprintf("realm%d.log", i+1)), args...), URL: urls[i], DataDir: data}
		d.Realms = append(d.Realms, node)
		// One after the other: the first creates the cluster's streams.
		if err := node.Start(); err != nil {
			d.Stop()
			return nil, err
		}
		if err := node.WaitReady(ctx, readyWait); err != nil {
			d.Stop()
			return nil, err
		}
	}
	if err := d.startGateway(ctx, gatewayCreds, filepath.Join(confDir, "gateways", chaosTwin+".creds")); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// StartEmbedded runs one realm node on its embedded store in dataDir, which
// refuses writes under minFreeMiB of free space, and the gateway of the
// scene's twin, enrolled before the node starts, on the embedded server's
// port for gateways.
func StartEmbedded(ctx context.Context, bins Binaries, dir, dataDir string, minFreeMiB int) (*Deployment, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	natsListen := "127.0.0.1:" + strconv.Itoa(ports[1])
	d := &Deployment{Dir: dir, bins: bins, scenes: bins.Scenes}
	gatewayCreds, err := d.enrollGateway(ctx, []string{dataDir}, "nats://"+natsListen)
	if err != nil {
		return nil, err
	}
	url := "http://localhost:" + strconv.Itoa(ports[0])
	args := append(d.serveArgs([]string{url}, 0, dataDir), "--nats-listen", natsListen, "--min-free-disk", strconv.Itoa(minFreeMiB))
	node := &RealmNode{Proc: newProc("realm r1", filepath.Join(dir, "realm1.log"), args...), URL: url, DataDir: dataDir}
	d.Realms = append(d.Realms, node)
	if err := node.Start(); err != nil {
		return nil, err
	}
	if err := node.WaitReady(ctx, readyWait); err != nil {
		d.Stop()
		return nil, err
	}
	if err := d.startGateway(ctx, gatewayCreds, ""); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// serveArgs are the flags every realm node gets: the same keys, every
// node's origin for passkeys, and no ceremony limit a workload from one
// address would meet.
func (d *Deployment) serveArgs(urls []string, i int, data string) []string {
	return []string{d.bins.Zerorealm, "serve",
		"--listen", strings.TrimPrefix(urls[i], "http://"),
		"--data", data,
		"--record-key", filepath.Join(d.Dir, "record.key"),
		"--template-key", filepath.Join(d.Dir, "template.key"),
		"--origins", strings.Join(urls, ","),
		"--ceremony-burst", "100000",
		"--max-pending-ceremonies", "-1",
		"--request-timeout", RequestTimeout.String(),
		"--scenes", d.scenes,
		"--log-level", "info",
	}
}

// Stop ends every process, realm nodes first.
func (d *Deployment) Stop() {
	for _, r := range d.Realms {
		r.Stop(10 * time.Second)
	}
	if d.Gateway != nil {
		d.Gateway.Stop(10 * time.Second)
	}
	for _, p := range d.NATS {
		p.Stop(10 * time.Second)
	}
}

// connect opens a NATS connection as the first realm node.
func (d *Deployment) connect() (*nats.Conn, error) {
	return nats.Connect(strings.Join(d.URLs, ","), nats.UserCredentials(d.creds), nats.MaxReconnects(-1))
}

// waitJetStream waits until the cluster answers for the realm's account.
func (d *Deployment) waitJetStream(ctx context.Context) error {
	deadline := time.Now().Add(readyWait)
	var last error
	for time.Now().Before(deadline) {
		nc, err := d.connect()
		if err == nil {
			js, _ := jetstream.New(nc)
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.AccountInfo(actx)
			cancel()
			nc.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("chaos: JetStream did not answer within %s: %w", readyWait, last)
}

// StreamLeader is the NATS server process that leads the realm's stream
// (its short name, e.g. "LEDGER").
func (d *Deployment) StreamLeader(ctx context.Context, stream string) (*Proc, error) {
	nc, err := d.connect()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reply, err := nc.RequestWithContext(rctx, "$JS.API.STREAM.INFO.ZR_"+stream, nil)
	if err != nil {
		return nil, fmt.Errorf("chaos: stream info %s: %w", stream, err)
	}
	var info struct {
		Cluster struct {
			Leader string `json:"leader"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(reply.Data, &info); err != nil {
		return nil, err
	}
	for _, p := range d.NATS {
		if p.Name == "nats "+info.Cluster.Leader {
			return p, nil
		}
	}
	return nil, fmt.Errorf("chaos: stream %s has no leader (%q)", stream, info.Cluster.Leader)
}

// Ready reports whether the node's /readyz answers 200.
func (n *RealmNode) Ready(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, n.URL+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits until /readyz answers 200, or the process exits.
func (n *RealmNode) WaitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !n.Ready(ctx) {
		if !n.Running() {
			return fmt.Errorf("chaos: %s exited while starting; see %s", n.Name, n.LogFile())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: %s not ready within %s; see %s", n.Name, limit, n.LogFile())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// VerifyAudit runs `zerorealm audit verify` against the deployment's
// store and returns its output; an error when a chain does not verify.
func (d *Deployment) VerifyAudit(ctx context.Context) (string, error) {
	args := []string{"audit", "verify", "--timeout", "2m"}
	if len(d.URLs) > 0 {
		args = append(args, "--nats", strings.Join(d.URLs, ","), "--nats-creds", d.creds)
	}
	args = append(args, "--data", d.Realms[0].DataDir)
	out, err := execOutput(ctx, d.bins.Zerorealm, args...)
	if err != nil {
		return out, fmt.Errorf("chaos: audit verify: %w", err)
	}
	return out, nil
}

var errNoBinary = errors.New("chaos: binary missing")

func execOutput(ctx context.Context, bin string, args ...string) (string, error) {
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%w: %v", errNoBinary, err)
	}
	cmd := execCommand(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
