package natsembed

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrDiskFull is wrapped by WriteRefusal's answer: the embedded store's
// disk has less free space than the configured minimum, or JetStream
// stopped taking writes after one failed (a full disk) and has not been
// restarted yet.
var ErrDiskFull = errors.New("natsembed: the embedded store's disk is full")

// diskCheckEvery is how often the guard measures free space and asks the
// server whether JetStream still takes writes. A statfs and a walk of the
// server's stream list cost microseconds; four times a second keeps the
// window in which a fast writer can fill the disk unseen short, and makes
// writes resume well within a second of space returning.
const diskCheckEvery = 250 * time.Millisecond

// DiskState is what the guard last found.
type DiskState struct {
	// Free is the free space under the data dir in bytes, -1 when it
	// cannot be measured on this system (then only Broken refuses).
	Free int64
	// MinFree is the threshold writes are refused under; 0 or negative:
	// not guarded.
	MinFree int64
	// Low: Free is under MinFree.
	Low bool
	// Broken: JetStream stopped taking writes after a write failed (the
	// server keeps a failed write's error for good, or disables JetStream)
	// and the guard has not yet restarted it, which it does once space is
	// back above MinFree (and at least 4 MiB).
	Broken bool
	// Restarts counts the guard's restarts of JetStream since Start.
	Restarts int
	// Err is why the last restart failed, nil after a good one.
	Err error
}

// Refusal is nil when writes may go ahead, and otherwise an error wrapping
// ErrDiskFull that says why, in words an operator can act on.
func (d DiskState) Refusal() error {
	if why := d.Reason(); why != "" {
		return fmt.Errorf("%w: %s", ErrDiskFull, why)
	}
	return nil
}

// Reason says why the store refuses writes, in an operator's words, or
// "" when it takes them: what readiness reports.
func (d DiskState) Reason() string {
	switch {
	case d.Broken && d.Low:
		return fmt.Sprintf("a write failed for want of space and %d MiB are free, under the %d MiB minimum", d.Free>>20, d.MinFree>>20)
	case d.Broken:
		return fmt.Sprintf("a write failed for want of space; JetStream restarts once %d MiB are free", max(d.MinFree, restartMinFree)>>20)
	case d.Low:
		return fmt.Sprintf("%d MiB are free under the data dir, under the %d MiB minimum", d.Free>>20, d.MinFree>>20)
	}
	return ""
}

// diskGuard watches the disk under the store and JetStream's health, and
// restarts JetStream when it broke on a full disk and space has returned.
// One goroutine owns every change of the server's JetStream state.
type diskGuard struct {
	srv      *server.Server
	storeDir string // what JetStream is (re)started with
	dataDir  string // where free space is measured
	minFree  atomic.Int64
	state    atomic.Pointer[DiskState]
	log      func(msg string, args ...any)
	warn     func(msg string, args ...any)
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	restarts int
	// sawFull: the disk was seen full or under the minimum since
	// JetStream last took writes.
	sawFull bool
	// lastRestart spaces restarts out, so a JetStream that breaks again at
	// once (a disk that fails for another reason) is not restarted in a
	// tight loop.
	lastRestart time.Time
}

// restartEvery is the shortest interval between two restarts of JetStream.
const restartEvery = time.Second

// restartMinFree is the least free space JetStream is restarted on, with
// or without a configured minimum: a restart on a disk still full would
// recover its streams only to fail again, and may leave their index
// files short.
const restartMinFree = 4 << 20

func newDiskGuard(e *Embedded, cfg Config, storeDir string) *diskGuard {
	g := &diskGuard{
		srv: e.srv, storeDir: storeDir, dataDir: cfg.DataDir,
		log: cfg.Logger.Info, warn: cfg.Logger.Warn,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	g.minFree.Store(cfg.MinFreeDisk)
	g.check()
	return g
}

func (g *diskGuard) run() {
	defer close(g.done)
	t := time.NewTicker(diskCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		g.check()
	}
}

// check measures, records and, when JetStream is broken and space is
// back, restarts it.
func (g *diskGuard) check() {
	minFree := g.minFree.Load()
	d := DiskState{Free: -1, MinFree: minFree, Restarts: g.restarts}
	if free, ok := freeDiskBytes(g.dataDir); ok {
		d.Free = int64(min(free, uint64(1<<62)))
		d.Low = minFree > 0 && d.Free < minFree
	}
	full := d.Low || d.Free >= 0 && d.Free < restartMinFree
	bad, noSpace := g.jetStreamState()
	// A JetStream that stopped on a disk seen full (or that says so
	// itself) broke for want of space, which is this guard's to mend;
	// stopped for any other reason, it is not, and readiness reports it.
	g.sawFull = full || bad && g.sawFull
	d.Broken = bad && (noSpace || g.sawFull)
	if d.Broken && d.Free >= max(minFree, restartMinFree) && time.Since(g.lastRestart) >= restartEvery {
		g.lastRestart = time.Now()
		d.Err = g.restartJetStream()
		bad, _ := g.jetStreamState()
		d.Broken = d.Err != nil || bad
		d.Restarts = g.restarts
	}
	prev := g.state.Swap(&d)
	if prev != nil && (prev.Refusal() == nil) != (d.Refusal() == nil) {
		if err := d.Refusal(); err != nil {
			g.warn("embedded store refuses writes", "reason", err, "free_bytes", d.Free)
		} else {
			g.log("embedded store takes writes again", "free_bytes", d.Free, "jetstream_restarts", d.Restarts)
		}
	}
}

// jetStreamState reports whether the server stopped taking writes (bad):
// its JetStream was disabled, which the server does on some write
// failures, or a stream holds a write error, which the file store keeps
// and returns for every later write until JetStream is restarted; and
// whether the write error says the disk was full.
func (g *diskGuard) jetStreamState() (bad, noSpace bool) {
	if !g.srv.JetStreamEnabled() {
		return true, false
	}
	h := g.srv.Healthz(&server.HealthzOptions{})
	if h == nil || h.Error == "" {
		return false, false
	}
	return true, strings.Contains(h.Error, "no space left")
}

// restartJetStream shuts JetStream down, keeping everything it stored,
// and starts it again from the store directory: it recovers its streams
// from disk with their write errors cleared, and clients' requests are
// answered again, with no restart of the process.
func (g *diskGuard) restartJetStream() error {
	g.warn("restarting JetStream after a failed write, now that space is free")
	if g.srv.JetStreamEnabled() {
		if err := g.srv.ShutdownJetStream(); err != nil {
			return fmt.Errorf("natsembed: stop JetStream: %w", err)
		}
	}
	if err := g.srv.EnableJetStream(&server.JetStreamConfig{StoreDir: g.storeDir}); err != nil {
		return fmt.Errorf("natsembed: restart JetStream: %w", err)
	}
	g.restarts++
	return nil
}

func (g *diskGuard) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
}

// Disk is what the disk guard last found; the zero state (nothing
// measured, nothing refused) on a server started without one.
func (e *Embedded) Disk() DiskState {
	if e.disk == nil {
		return DiskState{Free: -1}
	}
	return *e.disk.state.Load()
}

// WriteRefusal is nil when the store may write, and otherwise an error
// wrapping ErrDiskFull with the reason. It reads the guard's last finding
// and never blocks, so it can sit in front of every write.
func (e *Embedded) WriteRefusal() error {
	return e.Disk().Refusal()
}

// SetMinFreeDisk changes the free-space threshold while the server runs
// (bytes; 0 or negative: not guarded); it takes effect at the next check.
func (e *Embedded) SetMinFreeDisk(n int64) {
	if e.disk != nil {
		e.disk.minFree.Store(n)
	}
}
