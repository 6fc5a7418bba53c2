package chaos

import (
	"fmt"
	"os"
	"time"
)

// With ZR_CHAOS_DEBUG set, the tests print every transfer from a second
// before each heal to the end of its window: what a figure was made of.
func init() {
	if os.Getenv("ZR_CHAOS_DEBUG") == "" {
		return
	}
	debugOps = func(f Figures, ops []Op) {
		for _, o := range ops {
			if (o.Kind == KindItem || o.Kind == KindCredits) && !o.End.Before(f.heal.Add(-time.Second)) && o.Start.Before(f.end) {
				fmt.Fprintln(os.Stderr, o.Start.Format("15:04:05.000"), o.End.Format("15:04:05.000"), o.Kind, o.Status, o.Type, o.Reason, o.Err)
			}
		}
		fmt.Fprintln(os.Stderr, "heal", f.heal.Format("15:04:05.000"), "end", f.end.Format("15:04:05.000"))
	}
}
