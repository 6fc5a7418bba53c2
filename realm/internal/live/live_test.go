package live

import (
	"strings"
	"testing"
)

func TestCloseReasonFitsAFrame(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := closeReason(long)
	if len(got) > maxCloseReason || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Fatalf("closeReason = %q (%d bytes), want a prefix of at most %d bytes ending in …", got, len(got), maxCloseReason)
	}
	if closeReason("short") != "short" {
		t.Fatal("closeReason changed a short reason")
	}
}
