package edge

import (
	"errors"

	"github.com/zerorealm/zerorealm/avatar/session"
)

// SessionEndWord is how a client is told a session ended: "revoked" or
// "expired".
func SessionEndWord(kind error) string {
	if errors.Is(kind, session.ErrRevoked) {
		return "revoked"
	}
	return "expired"
}
