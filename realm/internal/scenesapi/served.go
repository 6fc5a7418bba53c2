package scenesapi

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/scenes"
)

// RecordServed audits which scenes and policy sets node serves, so the
// audit trail shows the rules in force at any time. A record that fails
// is logged; the node serves its scenes all the same.
func RecordServed(ctx context.Context, cat *scenes.Catalog, node string, record func(context.Context, audit.Event) error, log *slog.Logger) {
	for _, sc := range cat.Scenes() {
		var ids []string
		if sc.Policies != nil {
			ids = sc.Policies.IDs()
		}
		err := record(ctx, audit.Event{
			Actor:    "realm:" + node,
			Action:   "ServeScene",
			Resource: fmt.Sprintf("Scene::%q", sc.ID),
			Outcome:  audit.Allow,
			Reasons:  []string{"scene definition and policies validated at start-up"},
			Policies: ids,
			Signals:  map[string]any{"policy_files": sc.PolicyFiles},
		})
		if err != nil {
			log.Error("audit scene load", "scene", sc.ID, "err", err)
		}
	}
}
