package identity

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Bootstrap makes the first avatar registered on a realm without an
// administrator into one, once: the avatar service decides (its bootstrap
// key in the store is taken by one registration on one node), and this
// node also remembers it in its data directory, outside NATS.
type Bootstrap struct {
	// Disabled turns the bootstrap off: no registration is promoted.
	Disabled bool
	// Roles are what the first avatar gets.
	Roles []string
	// DataDir holds the marker file.
	DataDir string
	// Node names the realm node as the promotion's actor.
	Node string
	Log  *slog.Logger
	// AuditNoWait records the promotion without waiting for the record.
	AuditNoWait func(ctx context.Context, ev audit.Event)
}

// BootstrappedFile, in the data dir, says this node has seen the
// bootstrap administrator made.
const BootstrappedFile = "bootstrapped"

// Configure adds the bootstrap to the avatar service's configuration,
// unless it is off or this node has seen it done.
func (b *Bootstrap) Configure(cfg avatar.Config) avatar.Config {
	if b.Disabled {
		b.Log.Info("bootstrap administrator disabled: no registration is promoted", "admin_role", cfg.AdminRole)
		return cfg
	}
	if _, err := os.Stat(b.file()); err == nil {
		// The bootstrap key lives in NATS, where whoever can write may
		// delete it; this node saw an administrator made and never makes
		// another.
		b.Log.Info("bootstrap administrator already made on this realm: no registration is promoted", "marker", b.file())
		return cfg
	}
	cfg.BootstrapRoles = b.Roles
	cfg.OnBootstrap = b.audit
	return cfg
}

// audit records the promotion the avatar service decided. It runs inside
// the registration's request, whose id goes with it.
func (b *Bootstrap) audit(ctx context.Context, a *avatar.Avatar) {
	b.mark()
	b.Log.Warn("the first avatar registered on this realm is its administrator", "avatar", a.ID, "name", a.Name, "roles", a.Roles)
	b.AuditNoWait(ctx, audit.Event{
		Actor: "realm:" + b.Node, Action: "BootstrapAdmin", Resource: AvatarResource(a.ID), Outcome: audit.Allow,
		Reasons: []string{
			"first avatar registered on a realm without an administrator (bootstrap on)",
			"its registration created the bootstrap key; every other registration, on any node, finds it taken",
		},
		Signals: map[string]any{"name": a.Name, "roles": a.Roles, "request_id": edge.RequestID(ctx)},
	})
}

func (b *Bootstrap) file() string { return filepath.Join(b.DataDir, BootstrappedFile) }

// mark records, outside NATS, that the bootstrap is done.
func (b *Bootstrap) mark() {
	if err := os.WriteFile(b.file(), []byte("the bootstrap administrator of this realm has been made\n"), 0o600); err != nil {
		b.Log.Warn("cannot record that the bootstrap is done; a deletion of its key in NATS could promote another avatar", "file", b.file(), "err", err)
	}
}

// Note records the marker when the store says the bootstrap is done, so
// that a later start does not rely on NATS for it.
func (b *Bootstrap) Note(ctx context.Context, avatars interface {
	Bootstrapped(ctx context.Context) (string, error)
}) {
	if b.Disabled {
		return
	}
	if id, err := avatars.Bootstrapped(ctx); err == nil && id != "" {
		b.mark()
	}
}
