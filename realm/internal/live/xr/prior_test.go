package xr

import (
	"log/slog"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// TestXRPriorIsComputedOncePerConfiguration: realms of one process share
// the prior computed for their biometrics configuration, whatever logger
// they use, and a different configuration gets its own.
func TestXRPriorIsComputedOncePerConfiguration(t *testing.T) {
	first, err := xrPrior(biometrics.Config{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := xrPrior(biometrics.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != xrPriorPeople || len(again) != len(first) || again[0].Template != first[0].Template {
		t.Fatalf("prior computed again for the same configuration (%d then %d people)", len(first), len(again))
	}
	other, err := xrPrior(biometrics.Config{Window: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(other) != xrPriorPeople || other[0].Template == first[0].Template {
		t.Fatal("a different biometrics configuration shares another's prior")
	}
}
