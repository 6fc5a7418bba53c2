package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/clock"
	"github.com/zerorealm/zerorealm/internal/clustermsg"
	"github.com/zerorealm/zerorealm/internal/dirlock"
	"github.com/zerorealm/zerorealm/internal/natsembed"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Node is this node's foundation, in the order it starts: its data
// directory (locked) and name, its NATS connection (an embedded server or
// a cluster's), the cluster's record key and the store sealed under it,
// its key ring, its audit log with the witness and read model, and its
// entry in the node registry. Close stops them in reverse order.
type Node struct {
	Name     string
	Log      *slog.Logger // the given logger, with the node's name
	Embedded *natsembed.Embedded
	Conn     *nats.Conn
	Cluster  *clustermsg.Auth
	Store    *store.Store
	Keys     *Keys
	Audit    *audit.Log
	Witness  *audit.Witness
	View     *audit.View
	Registry *Registry

	dataDir string
	lock    *dirlock.Lock
}

// Open creates and locks the data directory and names the node: name, or
// the one DataDir/node-id keeps. Before anything reads or writes the data
// dir: two processes on one JetStream file store corrupt it.
func Open(dataDir, name string, log *slog.Logger) (*Node, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	lock, err := dirlock.Acquire(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	n := &Node{dataDir: dataDir, lock: lock}
	if name == "" {
		if name, err = LoadOrCreateID(dataDir); err != nil {
			return n, err
		}
	}
	n.Name, n.Log = name, log.With("node", name)
	return n, nil
}

// Config is what Start needs beyond the data directory and name.
type Config struct {
	// NATS are a cluster's URLs, with NATSAuth; empty starts an embedded
	// server, with a TCP port at ClientListen ("" for in-process only)
	// for Gateways, and MinFreeDisk.
	NATS         []string
	NATSAuth     natsembed.ClientAuth
	ClientListen string
	Gateways     []natsembed.GatewayUser
	MinFreeDisk  int64
	Prefix       string
	// RecordKeyFile is the cluster's record key; "" is DataDir/record.key.
	RecordKeyFile string
	Keys          KeyConfig // DataDir and Log are the node's
	RPID          string    // the audit log's origin names it
	URL           string    // the node's entry in the registry
	Heartbeat     time.Duration
	// Tampers hears the store's reports of records that do not verify;
	// the caller starts auditing them (Tampers.Audit) once it can.
	Tampers *Tampers
	// Status says why the node is not ready while it waits for JetStream,
	// and "starting" once it answers.
	Status func(reason string)
	// WriteGate makes the store's write gate of the embedded server's
	// refusal (store.Config.WriteGate).
	WriteGate func(refusal func() error) func() error
	// Observe counts each decision put on record.
	Observe func(action string, outcome audit.Outcome)
	// Clock dates the node's registry entry and judges the others'; nil
	// is the system's.
	Clock clock.Clock
}

// Start connects the node and opens what it keeps, in order. After an
// error, Close stops what started.
func (n *Node) Start(ctx context.Context, cfg Config) (err error) {
	cfg.Clock = clock.Or(cfg.Clock)
	if len(cfg.NATS) == 0 {
		n.Embedded, err = natsembed.Start(ctx, natsembed.Config{
			DataDir: n.dataDir, ClientListen: cfg.ClientListen, Prefix: cfg.Prefix, Gateways: cfg.Gateways,
			ServerName: n.Name, Logger: n.Log, MinFreeDisk: cfg.MinFreeDisk,
		})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		n.Conn = n.Embedded.Conn()
	} else {
		dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n.Conn, err = natsembed.Dial(dialCtx, cfg.NATS, "zerorealm-"+n.Name, cfg.NATSAuth, n.Log)
		cancel()
		if err != nil {
			return err
		}
	}
	recordKey, recordKeyFile, err := LoadRecordKey(n.dataDir, cfg.RecordKeyFile)
	if err != nil {
		return err
	}
	if n.Cluster, err = clustermsg.New(recordKey); err != nil {
		return err
	}
	cfg.Tampers.Begin(n.Name, n.Log)
	// A cluster that has just elected its meta leader, or whose JetStream
	// is still starting, answers "JetStream not available" for a moment:
	// wait for it (logging why) rather than exit.
	cfg.Status("waiting for JetStream")
	// The embedded server's disk guard refuses writes once the node
	// serves; with NATS, whose servers own their disks, nothing does.
	var writeGate func() error
	if n.Embedded != nil {
		writeGate = cfg.WriteGate(n.Embedded.WriteRefusal)
	}
	n.Store, err = store.New(ctx, n.Conn, store.Config{Prefix: cfg.Prefix, Logger: n.Log, RecordKey: recordKey, OnTamper: cfg.Tampers.Report, WaitForJetStream: true, WriteGate: writeGate})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	cfg.Status("starting")
	if err := CheckRecordKey(ctx, n.Store, recordKey, recordKeyFile); err != nil {
		return err
	}
	cfg.Keys.DataDir, cfg.Keys.Log = n.dataDir, n.Log
	if n.Keys, err = OpenKeys(cfg.Keys); err != nil {
		return err
	}
	n.Audit, n.Witness, err = OpenAudit(ctx, n.Store, AuditConfig{
		Node: n.Name, RPID: cfg.RPID, DataDir: n.dataDir, Keys: n.Keys, Log: n.Log, Observe: cfg.Observe,
	})
	if err != nil {
		return err
	}
	if n.View, err = audit.NewView(ctx, n.Store, 0); err != nil {
		return fmt.Errorf("audit view: %w", err)
	}
	n.Registry, err = StartRegistry(ctx, n.Store, Info{Node: n.Name, URL: cfg.URL, Started: cfg.Clock.Now().UTC()}, cfg.Heartbeat, cfg.Clock.Now, n.Log)
	if err != nil {
		return fmt.Errorf("node registry: %w", err)
	}
	return nil
}

// NATSMode says, for the log, how the node reaches NATS.
func (n *Node) NATSMode(cluster []string) string {
	if len(cluster) > 0 {
		return "cluster " + strings.Join(cluster, ",")
	}
	if n.Embedded != nil && n.Embedded.ClientURL() != "" {
		return "embedded, authenticated clients at " + n.Embedded.ClientURL() + " (for enrolled gateways)"
	}
	return "embedded, in-process only (no gateway enrolled, so no client port)"
}

// StopRegistry removes the node from the registry; the first step of
// Close, which a caller whose parts read the store may take earlier.
func (n *Node) StopRegistry(ctx context.Context) {
	if n != nil {
		n.Registry.Stop(ctx)
	}
}

// Close stops what Start started, in reverse order, the audit log's flush
// within ctx; last, it unlocks the data directory, so another process may
// open the store. A nil node (Open failed) does nothing.
func (n *Node) Close(ctx context.Context) {
	if n == nil {
		return
	}
	if n.View != nil {
		n.View.Close()
	}
	if n.Witness != nil {
		n.Witness.Close()
	}
	if n.Audit != nil {
		if err := n.Audit.Close(ctx); err != nil {
			n.logger().Error("audit log close", "err", err)
		}
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n.Embedded != nil {
		n.Embedded.Shutdown(flushCtx)
	} else if n.Conn != nil {
		if err := n.Conn.FlushWithContext(flushCtx); err != nil {
			n.logger().Warn("nats flush on shutdown", "err", err)
		}
		n.Conn.Close()
	}
	if err := n.lock.Release(); err != nil {
		n.logger().Warn("data dir unlock", "err", err)
	}
}

func (n *Node) logger() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}
