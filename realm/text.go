package realm

import (
	"fmt"

	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Small helpers of the realm's remaining files.

func quote(s string) string { return fmt.Sprintf("%q", s) }

// Action digests: see edge/digest.go.
var (
	parseDigest = edge.ParseDigest
	digestHex   = edge.DigestHex
)
