package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The twin of the workload's scene (testdata) whose gateway runs as a
// process of the deployment: one valve per operator.
const (
	chaosTwin = "pump-1"
	// valves is how many valves the twin has, the most operators a
	// workload may have.
	valves = 8
)

// Execution is one command the twin's gateway carried out, as its journal
// (`zerorealm gateway --journal`, docs/twins.md) records it.
type Execution struct {
	// Command is the command's hash (0x hex), the same for every grant of
	// one Idempotency-Key.
	Command string
	// Actuator is where it was carried out; "" when the gateway stopped
	// while its driver ran, before the acknowledgement that names it.
	Actuator string
	Nonce    uint64
}

// enrollGateway makes the realm nodes' keys and enrolls the twin's
// gateway as an operator of a cluster does: `zerorealm keys rotate` makes
// each later node's first key and `keys export-public` prints its
// address; `zerorealm gateway enroll` on the first node's data directory
// pins every node's key; the enrollment (twin-gateways.json) goes to every
// node's data directory before the nodes start. The gateway is to reach
// NATS at natsURL. It returns the credentials file of the gateway.
func (d *Deployment) enrollGateway(ctx context.Context, dataDirs []string, natsURL string) (string, error) {
	var others []string
	for _, data := range dataDirs[1:] {
		if err := os.MkdirAll(data, 0o700); err != nil {
			return "", err
		}
		if out, err := execOutput(ctx, d.bins.Zerorealm, "keys", "rotate", "--data", data); err != nil {
			return "", fmt.Errorf("chaos: keys rotate: %w: %s", err, out)
		}
		addr, err := d.nodeAddress(ctx, data)
		if err != nil {
			return "", err
		}
		others = append(others, "--realm-key", addr)
	}
	creds := filepath.Join(d.Dir, chaosTwin+".json")
	args := append([]string{"gateway", "enroll", "--twin", chaosTwin, "--data", dataDirs[0], "--scenes", d.scenes,
		"--nats-url", natsURL, "--out", creds}, others...)
	if out, err := execOutput(ctx, d.bins.Zerorealm, args...); err != nil {
		return "", fmt.Errorf("chaos: gateway enroll: %w: %s", err, out)
	}
	// realm.TwinGatewaysFile, which the harness (below the realm) names
	// itself.
	enrolled, err := os.ReadFile(filepath.Join(dataDirs[0], "twin-gateways.json"))
	if err != nil {
		return "", err
	}
	for _, data := range dataDirs[1:] {
		if err := os.WriteFile(filepath.Join(data, "twin-gateways.json"), enrolled, 0o600); err != nil {
			return "", err
		}
	}
	return creds, nil
}

// nodeAddress is the active key's address `zerorealm keys export-public`
// prints for the node of data.
func (d *Deployment) nodeAddress(ctx context.Context, data string) (string, error) {
	cmd := execCommand(ctx, d.bins.Zerorealm, "keys", "export-public", "--data", data)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chaos: keys export-public: %w", err)
	}
	var pub struct {
		Keys []struct {
			Address string `json:"address"`
			Active  bool   `json:"active"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(out, &pub); err != nil {
		return "", fmt.Errorf("chaos: keys export-public: %w", err)
	}
	for _, k := range pub.Keys {
		if k.Active {
			return k.Address, nil
		}
	}
	return "", fmt.Errorf("chaos: no active key in %s", data)
}

// startGateway runs `zerorealm gateway` for the twin, with its journal
// beside its own log, and waits until it says it runs. On a cluster it
// connects with the NATS credentials `nats config --gateway` wrote
// (natsCreds); on the embedded store, with its enrollment's nkey at the
// URL the enrollment names.
func (d *Deployment) startGateway(ctx context.Context, creds, natsCreds string) error {
	d.JournalFile = filepath.Join(d.Dir, chaosTwin+".journal")
	args := []string{d.bins.Zerorealm, "gateway", "--creds", creds, "--journal", d.JournalFile, "--log-level", "info"}
	if natsCreds != "" {
		args = append(args, "--nats", strings.Join(d.URLs, ","), "--nats-creds", natsCreds)
	}
	d.Gateway = newProc("gateway "+chaosTwin, filepath.Join(d.Dir, "gateway.log"), args...)
	if err := d.Gateway.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(readyWait)
	for {
		data, _ := os.ReadFile(d.Gateway.LogFile())
		switch {
		case strings.Contains(string(data), "gateway running"):
			return nil
		case !d.Gateway.Running():
			return fmt.Errorf("chaos: the gateway exited while starting; see %s", d.Gateway.LogFile())
		case time.Now().After(deadline):
			return fmt.Errorf("chaos: the gateway did not start within %s; see %s", readyWait, d.Gateway.LogFile())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
