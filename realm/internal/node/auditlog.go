package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/internal/store"
)

// AuditDir is where a node keeps, outside NATS, its last audit checkpoint
// and the last checkpoint it witnessed of every other node.
const AuditDir = "audit"

// AuditConfig is what opening the node's audit log needs.
type AuditConfig struct {
	Node, RPID, DataDir string
	Keys                *Keys
	Log                 *slog.Logger
	// Observe counts each decision put on record (audit.Config.Observe).
	Observe func(action string, outcome audit.Outcome)
}

// OpenAudit opens this node's audit chain as a transparency log (its
// checkpoint key derived from the node's key ring, its last checkpoint in
// DataDir/audit) and starts witnessing the other nodes' checkpoints. The
// log is returned whenever it opened, even with an error of the witness.
func OpenAudit(ctx context.Context, st *store.Store, cfg AuditConfig) (*audit.Log, *audit.Witness, error) {
	key, previous, err := cfg.Keys.AuditKeys(audit.Origin(cfg.RPID, cfg.Node))
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(cfg.DataDir, AuditDir)
	log, err := audit.Open(ctx, st, audit.Config{Node: cfg.Node, Logger: cfg.Log, Key: key, PreviousKey: previous, Dir: dir, Observe: cfg.Observe})
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	witness, err := audit.StartWitness(ctx, st, audit.WitnessConfig{Node: cfg.Node, Key: key, Dir: dir, Logger: cfg.Log})
	if err != nil {
		// The log is open: the caller closes it with the rest.
		return log, nil, fmt.Errorf("audit witness: %w", err)
	}
	cfg.Log.Info("audit log is a transparency log", "origin", key.Origin(), "key", key.VerifierKey())
	return log, witness, nil
}
