package realm

import (
	"github.com/zerorealm/zerorealm/realm/internal/decide"
	"github.com/zerorealm/zerorealm/realm/internal/identity"
)

// The decision and its audit (realm/internal/decide): every part is given
// r.decisions as its Decider and Auditor; the scene access routes read the
// catalog, trust and presence.

// bindAccess binds the scene access routes once the live edge, whose
// presence they read, is made.
func (r *Realm) bindAccess() error {
	return r.access.Bind(decide.APIDeps{Scenes: r.catalog, Trust: r.trust, Presence: r.live, TrustView: identity.TrustView})
}
