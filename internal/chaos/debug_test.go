package chaos

import (
	"os"
	"time"
	"testing"
)

// TestMain's companion: with CHAOS_DEBUG set, every write after each
// heal is printed.
func init() {
	if os.Getenv("CHAOS_DEBUG") == "" {
		return
	}
	debugOps = func(f Figures, ops []Op) {
		for _, o := range ops {
			if (o.Kind == KindItem || o.Kind == KindCredits) && !o.End.Before(f.heal.Add(-time.Second)) && o.Start.Before(f.end) {
				println(o.Start.Format("15:04:05.000"), o.End.Format("15:04:05.000"), o.Kind, o.Status, o.Type, o.Reason, o.Err)
			}
		}
		println("heal", f.heal.Format("15:04:05.000"), "end", f.end.Format("15:04:05.000"))
	}
}

var _ = testing.Short
