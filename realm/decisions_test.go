package realm

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zerorealm/zerorealm/internal/audit"
)

// storedAudit reports whether the audit chain as stored (not the queue)
// holds an event that matches.
func storedAudit(t *testing.T, r *Realm, matches func(audit.Event) bool) bool {
	t.Helper()
	ctx := context.Background()
	stream, err := r.store.Stream(ctx, audit.StreamConfig)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLast(ctx, audit.Subject(r.cfg.Node))
	if err != nil {
		return false
	}
	for seq := uint64(1); seq <= last.Seq; seq++ {
		m, err := stream.Get(ctx, seq)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(m.Data), "\n") {
			var ev audit.Event
			if json.Unmarshal([]byte(line), &ev) == nil && matches(ev) {
				return true
			}
		}
	}
	return false
}
