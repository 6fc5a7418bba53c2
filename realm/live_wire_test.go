package realm

import (
	"encoding/json"
)

// The realm WebSocket's close codes and limits, as clients/PROTOCOL.md
// documents them: the tests that drive a whole realm check the wire.
const (
	closeReplaced        = 4409
	closeTooManyMessages = 4429
	liveMaxMessage       = 16 << 10
)

// Codes of the error messages clients branch on.
const (
	codeInvalid      = "invalid"
	codeDenied       = "denied"
	codeUnknownScene = "unknown-scene"
	codeNotJoined    = "not-joined"
)

// presenceEvent is one join, leave or zone change of a member, as realm
// nodes tell each other of it (docs/architecture.md), for tests that
// speak as another node.
type presenceEvent map[string]string

func encodeJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
