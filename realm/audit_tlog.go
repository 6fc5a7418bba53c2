package realm

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/zerorealm/zerorealm/internal/audit"
)

// AuditDir is where a node keeps, outside NATS, its last audit checkpoint
// and the last checkpoint it witnessed of every other node.
const AuditDir = "audit"

// openAudit opens this node's audit chain as a transparency log (its
// checkpoint key derived from the node's key ring, its last checkpoint in
// DataDir/audit) and starts witnessing the other nodes' checkpoints.
func (r *Realm) openAudit(ctx context.Context) error {
	key, previous, err := r.auditKeys()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.cfg.DataDir, AuditDir)
	r.audit, err = audit.Open(ctx, r.store, audit.Config{Node: r.cfg.Node, Logger: r.log, Key: key, PreviousKey: previous, Dir: dir, Observe: r.metrics.decided})
	if err != nil {
		return fmt.Errorf("realm: audit log: %w", err)
	}
	r.witness, err = audit.StartWitness(ctx, r.store, audit.WitnessConfig{Node: r.cfg.Node, Key: key, Dir: dir, Logger: r.log})
	if err != nil {
		return fmt.Errorf("realm: audit witness: %w", err)
	}
	r.log.Info("audit log is a transparency log", "origin", key.Origin(), "key", key.VerifierKey())
	return nil
}
