package chaos

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault is one thing done to a running deployment: Inject at the start,
// Heal after Hold (restart what was killed, free the disk).
type Fault struct {
	Name   string
	Hold   time.Duration
	Inject func(ctx context.Context) error
	Heal   func(ctx context.Context) error
	// Down, when set, names the realm node the fault takes down: requests
	// to it may go unanswered until it is ready again.
	Down *RealmNode
}

// Figures are what one fault did to the workload.
type Figures struct {
	Fault string
	// Requests and Refused count the requests sent from the fault's start
	// until every node was ready again and a few seconds more; Refused are
	// those not answered with success.
	Requests, Refused int
	// Statuses counts answers by "status type" ("503 unavailable", "0"
	// for no answer).
	Statuses map[string]int
	// LongestWait is the longest any of those requests waited.
	LongestWait time.Duration
	// Commands, CommandsRefused, CommandStatuses and CommandWait are the
	// same for the twin commands sent in the window, which the figures
	// above leave out (with the requests for their hashes): "refused" is
	// every answer but done ("200 refused (feed_stale)" when the gateway
	// refused the grant).
	Commands, CommandsRefused int
	CommandStatuses           map[string]int
	CommandWait               time.Duration
	// WritesResume is from the heal until the first transfer sent after it
	// was applied; WriteGap the longest time without an applied transfer
	// within the window.
	WritesResume, WriteGap time.Duration
	// ReadyDown is from the start until a node's /readyz turned 503 (-1:
	// it never did); ReadyUp from the heal until every node's was 200.
	ReadyDown, ReadyUp time.Duration
	start, heal, end   time.Time
}

func (f Figures) String() string {
	down := "stayed 200"
	if f.ReadyDown >= 0 {
		down = fmt.Sprintf("503 after %.1fs", f.ReadyDown.Seconds())
	}
	s := fmt.Sprintf("%s: refused %d/%d; answers %s; longest wait %.2fs; writes resume %.2fs after the heal (longest gap %.2fs); /readyz %s, 200 %.1fs after the heal",
		f.Fault, f.Refused, f.Requests, countList(f.Statuses), f.LongestWait.Seconds(), f.WritesResume.Seconds(), f.WriteGap.Seconds(), down, f.ReadyUp.Seconds())
	if f.Commands > 0 {
		s += fmt.Sprintf("; twin commands: not done %d/%d; answers %s; longest wait %.2fs", f.CommandsRefused, f.Commands, countList(f.CommandStatuses), f.CommandWait.Seconds())
	}
	return s
}

// countList is counts as "key xN" items, sorted.
func countList(counts map[string]int) string {
	var list []string
	for k, n := range counts {
		list = append(list, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(list)
	return strings.Join(list, ", ")
}

// Report is a scenario's figures and the checker's verdict.
type Report struct {
	Faults   []Figures
	Verdict  Verdict
	Ops      int
	Duration time.Duration
}

// readyLog records every node's /readyz, polled every 100 ms.
type readyLog struct {
	mu      sync.Mutex
	changes []readyChange
}

type readyChange struct {
	at    time.Time
	node  int
	ready bool
}

func (l *readyLog) watch(ctx context.Context, nodes []*RealmNode) {
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			last := true
			for ctx.Err() == nil {
				r := n.Ready(ctx)
				if r != last && ctx.Err() == nil {
					l.mu.Lock()
					l.changes = append(l.changes, readyChange{at: time.Now(), node: i, ready: r})
					l.mu.Unlock()
					last = r
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
}

// figures: first drop at or after start; the time from heal until no node
// was unready any more.
func (l *readyLog) turns(start, heal, end time.Time, nodes int) (down, up time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	down = -1
	ready := make([]bool, nodes)
	for i := range ready {
		ready[i] = true
	}
	lastUp := heal
	for _, c := range l.changes {
		if c.at.After(end) {
			break
		}
		ready[c.node] = c.ready
		if c.at.Before(start) {
			continue
		}
		if !c.ready && down < 0 {
			down = c.at.Sub(start)
		}
		if c.ready && c.at.After(heal) {
			lastUp = c.at
		}
	}
	return down, lastUp.Sub(heal)
}

// debugOps, when set (tests), sees each fault's figures and the history.
var debugOps func(Figures, []Op)

// grantLifetime is how long a realm's grant is valid (the dispatcher's
// default): a gateway carries it out within that time or never.
const grantLifetime = 3 * time.Second

// Settle is how long the workload has, once stopped, to get an answer to
// the intents it holds.
const Settle = 30 * time.Second

// Run runs the workload on d through faults in turn, with warm seconds of
// calm before the first and after each, then checks the history.
func Run(ctx context.Context, d *Deployment, w *Workload, rec *Recorder, faults []Fault, warm time.Duration, logf func(string, ...any)) (Report, error) {
	began := time.Now()
	nodes := make([]string, len(d.Realms))
	for i, n := range d.Realms {
		nodes[i] = n.URL
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var rl readyLog
	watched := make(chan struct{})
	go func() { rl.watch(watchCtx, d.Realms); close(watched) }()
	defer func() { stopWatch(); <-watched }()

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	ran := make(chan struct{})
	go func() { w.Run(runCtx, Settle); close(ran) }()

	type downWindow struct {
		node       int
		start, end time.Time
	}
	var downs []downWindow
	var figs []Figures
	sleep(ctx, warm)
	for _, f := range faults {
		logf("fault %q: inject", f.Name)
		fig := Figures{Fault: f.Name, start: time.Now()}
		if err := f.Inject(ctx); err != nil {
			return Report{}, fmt.Errorf("chaos: inject %s: %w", f.Name, err)
		}
		sleep(ctx, f.Hold)
		fig.heal = time.Now()
		logf("fault %q: heal", f.Name)
		if err := f.Heal(ctx); err != nil {
			return Report{}, fmt.Errorf("chaos: heal %s: %w", f.Name, err)
		}
		for _, n := range d.Realms {
			if err := n.WaitReady(ctx, readyWait); err != nil {
				return Report{}, fmt.Errorf("chaos: after %s: %w", f.Name, err)
			}
		}
		// Until a transfer sent after the heal is applied, so that the
		// window holds the resumption, however long it takes.
		waitWrite(ctx, rec, fig.heal, readyWait)
		if f.Down != nil {
			for i, n := range d.Realms {
				if n == f.Down {
					downs = append(downs, downWindow{node: i, start: fig.start, end: time.Now()})
				}
			}
		}
		sleep(ctx, warm)
		fig.end = time.Now()
		figs = append(figs, fig)
	}
	stopRun()
	<-ran
	ops := rec.Ops()
	for i := range figs {
		figs[i].fill(ops)
		if debugOps != nil {
			debugOps(figs[i], ops)
		}
		figs[i].ReadyDown, figs[i].ReadyUp = rl.turns(figs[i].start, figs[i].heal, figs[i].end, len(d.Realms))
		logf("%s", figs[i])
	}
	stopWatch()

	intents := w.Intents()
	digests := make([]string, 0, len(intents))
	for dgst := range intents {
		digests = append(digests, dgst)
	}
	items := make([]string, 0, len(w.Items))
	for item := range w.Items {
		items = append(items, item)
	}
	final, err := ReadFinal(ctx, nodes, items, digests)
	if err != nil {
		return Report{}, err
	}
	if d.Executions != nil {
		// A grant still in flight when the workload stopped is carried
		// out within its lifetime (3 s) or never.
		var lastSent time.Time
		for _, o := range ops {
			if o.Kind == KindCommand && o.Start.After(lastSent) {
				lastSent = o.Start
			}
		}
		sleep(ctx, time.Until(lastSent.Add(grantLifetime+time.Second)))
		if final.Executions, err = d.Executions(); err != nil {
			return Report{}, fmt.Errorf("chaos: the gateway's journal: %w", err)
		}
		final.Gateway = true
	}
	down := func(node int, at time.Time) bool {
		for _, dw := range downs {
			if dw.node == node && !at.Before(dw.start) && !at.After(dw.end) {
				return true
			}
		}
		return false
	}
	v := Check(w, ops, final, down)
	return Report{Faults: figs, Verdict: v, Ops: len(ops), Duration: time.Since(began)}, nil
}

// fill computes the figures from the requests sent within the window.
func (f *Figures) fill(ops []Op) {
	f.Statuses, f.CommandStatuses = map[string]int{}, map[string]int{}
	f.WritesResume = -1
	var applied []time.Time
	lastWrite := f.start
	for _, o := range ops {
		isWrite := o.Kind == KindItem || o.Kind == KindCredits
		if isWrite && o.Outcome() == Applied && o.End.Before(f.start) && o.End.After(lastWrite) {
			lastWrite = o.End
		}
		if o.Start.Before(f.start) || o.Start.After(f.end) || o.Abandoned {
			continue
		}
		key := fmt.Sprint(o.Status)
		if o.Type != "" {
			key += " " + o.Type
		}
		if o.Result != "" {
			key += " " + o.Result
		}
		if o.Reason != "" {
			key += " (" + o.Reason + ")"
		}
		switch o.Kind {
		case KindDigest:
			continue
		case KindCommand:
			f.Commands++
			f.CommandStatuses[key]++
			if o.Outcome() != Applied {
				f.CommandsRefused++
			}
			f.CommandWait = max(f.CommandWait, o.Wait())
			continue
		}
		f.Requests++
		f.Statuses[key]++
		if o.Outcome() != Applied {
			f.Refused++
		}
		f.LongestWait = max(f.LongestWait, o.Wait())
		if isWrite && o.Outcome() == Applied {
			applied = append(applied, o.End)
			if !o.Start.Before(f.heal) && (f.WritesResume < 0 || o.End.Sub(f.heal) < f.WritesResume) {
				f.WritesResume = o.End.Sub(f.heal)
			}
		}
	}
	sort.Slice(applied, func(i, j int) bool { return applied[i].Before(applied[j]) })
	prev := f.start
	for _, t := range applied {
		f.WriteGap = max(f.WriteGap, t.Sub(prev))
		prev = t
	}
	f.WriteGap = max(f.WriteGap, f.end.Sub(prev))
}

// waitWrite waits until rec holds a transfer sent at or after since and
// applied, or limit passes.
func waitWrite(ctx context.Context, rec *Recorder, since time.Time, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ops := rec.Ops()
		for i := len(ops) - 1; i >= 0; i-- {
			o := ops[i]
			if (o.Kind == KindItem || o.Kind == KindCredits) && o.Outcome() == Applied && !o.Start.Before(since) {
				return
			}
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// KillNATS is the fault of SIGKILLing a NATS server that pick chooses, and
// starting it again at the heal.
func KillNATS(name string, hold time.Duration, pick func(ctx context.Context) ([]*Proc, error)) Fault {
	var killed []*Proc
	return Fault{Name: name, Hold: hold,
		Inject: func(ctx context.Context) error {
			var err error
			if killed, err = pick(ctx); err != nil {
				return err
			}
			for _, p := range killed {
				p.Kill()
			}
			return nil
		},
		Heal: func(context.Context) error {
			for _, p := range killed {
				if err := p.Start(); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// KillRealm is the fault of SIGKILLing a realm node and starting it again.
func KillRealm(n *RealmNode, hold time.Duration) Fault {
	return Fault{Name: "SIGKILL of realm node " + strings.TrimPrefix(n.Name, "realm "), Hold: hold, Down: n,
		Inject: func(context.Context) error { n.Kill(); return nil },
		Heal:   func(context.Context) error { return n.Start() },
	}
}

// LedgerLeader picks the NATS server leading the ledger's stream.
func (d *Deployment) LedgerLeader(ctx context.Context) ([]*Proc, error) {
	p, err := d.StreamLeader(ctx, "LEDGER")
	if err != nil {
		return nil, err
	}
	return []*Proc{p}, nil
}

// NotLedgerLeader picks a NATS server that does not lead the ledger.
func (d *Deployment) NotLedgerLeader(ctx context.Context) ([]*Proc, error) {
	leader, err := d.StreamLeader(ctx, "LEDGER")
	if err != nil {
		return nil, err
	}
	for _, p := range d.NATS {
		if p != leader {
			return []*Proc{p}, nil
		}
	}
	return nil, fmt.Errorf("chaos: no server besides the leader")
}

// Majority picks two of the three NATS servers, the ledger's leader
// among them: the streams lose their quorum.
func (d *Deployment) Majority(ctx context.Context) ([]*Proc, error) {
	leader, err := d.StreamLeader(ctx, "LEDGER")
	if err != nil {
		return nil, err
	}
	for _, p := range d.NATS {
		if p != leader {
			return []*Proc{leader, p}, nil
		}
	}
	return nil, fmt.Errorf("chaos: no server besides the leader")
}
