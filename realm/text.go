package realm

import (
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// Small helpers of the realm's remaining files.

// nonNil is s, or an empty list instead of nil, so JSON says [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Action digests: see edge/digest.go.
var digestHex = edge.DigestHex
