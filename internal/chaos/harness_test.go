package chaos

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/zerorealm/zerorealm/twin/gateway"
)

// The binaries are built once per test binary, into a folder removed at
// its end.
var (
	buildOnce sync.Once
	built     Binaries
	buildErr  error
	buildDir  string
)

func binaries(t *testing.T) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "zerorealm-chaos-bin"); buildErr == nil {
			built, buildErr = Build(context.Background(), buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// runScenario runs faults against d with a workload of workers, checks the
// audit chains after the deployment stops when stopFirst (the embedded
// store cannot be opened by two processes), and fails the test on any
// finding.
func runScenario(t *testing.T, d *Deployment, workers, itemsPer int, faults []Fault, stopFirst bool) Report {
	t.Helper()
	ctx := context.Background()
	nodes := make([]string, len(d.Realms))
	for i, n := range d.Realms {
		nodes[i] = n.URL
	}
	rec := &Recorder{}
	// Where the deployment runs the twin's gateway, each worker is also
	// one of its operators, and the checker reads what it carried out.
	operators := d.Gateway != nil
	if operators {
		d.Executions = func() ([]Execution, error) { return readJournal(d.JournalFile) }
	}
	w, err := NewWorkload(ctx, nodes, workers, itemsPer, operators, rec)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, d, w, rec, faults, warmUp, t.Logf)
	if err != nil {
		dumpLogs(t, d)
		t.Fatal(err)
	}
	if stopFirst {
		d.Stop()
	}
	if out, err := d.VerifyAudit(ctx); err != nil {
		rep.Verdict.Audit = strings.TrimSpace(out) + ": " + err.Error()
	}
	t.Logf("%d requests in %s; checker: %s", rep.Ops, rep.Duration.Round(100_000_000), rep.Verdict)
	for _, u := range rep.Verdict.Unresolved {
		t.Logf("twin command without a final answer: %s", u)
	}
	if len(rep.Verdict.Unresolved) > 0 {
		showUnresolved(t, d, rec.Ops())
	}
	if !rep.Verdict.OK() {
		dumpLogs(t, d)
		showSlow(t, d, rec.Ops())
		t.Errorf("checker: %s", rep.Verdict)
	}
	return rep
}

// readJournal reads the gateway's journal with the gateway's own reader
// (the harness, below the domains, may not import it outside its tests):
// every command it carried out, with the actuator its acknowledgement
// names. The journal refuses to load a command begun again after it was
// carried out, so a second execution comes back as that error.
func readJournal(path string) ([]Execution, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	commands, _, err := gateway.ReadJournal(data)
	if err != nil {
		return nil, err
	}
	var out []Execution
	for h, c := range commands {
		if !c.CarriedOut() {
			continue
		}
		e := Execution{Command: h.Hex(), Nonce: c.Nonce}
		if c.Ack != nil {
			e.Actuator = c.Ack.Ack.Actuator
		}
		out = append(out, e)
	}
	return out, nil
}

// dumpLogs shows the tail of every process's log.
func dumpLogs(t *testing.T, d *Deployment) {
	t.Helper()
	var procs []*Proc
	procs = append(procs, d.NATS...)
	for _, r := range d.Realms {
		procs = append(procs, r.Proc)
	}
	if d.Gateway != nil {
		procs = append(procs, d.Gateway)
	}
	for _, p := range procs {
		data, _ := os.ReadFile(p.LogFile())
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		t.Logf("--- %s (last lines of %s)\n%s", p.Name, p.LogFile(), strings.Join(lines[max(0, len(lines)-40):], "\n"))
	}
}

// showSlow prints the realm log lines of the requests that waited past
// MaxWait or failed with 500 or 404.
func showSlow(t *testing.T, d *Deployment, ops []Op) {
	t.Helper()
	var slow []Op
	for _, o := range ops {
		if o.Wait() > MaxWait || o.Status == 500 || o.Status == 404 {
			slow = append(slow, o)
		}
	}
	showRequests(t, d, "slow request", slow)
}

// showUnresolved prints the realm log lines of the first attempts of each
// twin command that never had a final answer: what held it.
func showUnresolved(t *testing.T, d *Deployment, ops []Op) {
	t.Helper()
	final := map[string]bool{}
	for _, o := range ops {
		if o.Kind == KindCommand && o.Outcome() != Unknown {
			final[o.Digest] = true
		}
	}
	shown := map[string]int{}
	var first []Op
	for _, o := range ops {
		if o.Kind == KindCommand && !final[o.Digest] && o.RequestID != "" && shown[o.Digest] < 3 {
			shown[o.Digest]++
			first = append(first, o)
		}
	}
	showRequests(t, d, "command without a final answer", first)
}

// showRequests prints every realm log line naming one of the requests.
func showRequests(t *testing.T, d *Deployment, what string, ops []Op) {
	t.Helper()
	if len(ops) == 0 {
		return
	}
	logs := map[string][]string{}
	for _, r := range d.Realms {
		data, _ := os.ReadFile(r.LogFile())
		logs[r.Name] = strings.Split(string(data), "\n")
	}
	for _, o := range ops {
		if o.RequestID == "" {
			continue
		}
		for _, r := range d.Realms {
			for _, l := range logs[r.Name] {
				if strings.Contains(l, o.RequestID) {
					t.Logf("%s %s (key %s) on %s: %s", what, o.RequestID, o.Key, r.Name, l)
				}
			}
		}
	}
}
