package realm

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/trust"
)

// templateKeyFile, in the data dir, holds the key that encrypts biometric
// templates at rest unless Config.TemplateKeyFile names another file.
// Every node of a cluster needs the same key to read templates another
// node enrolled: copy the file to each node.
const templateKeyFile = "template.key"

// xrStoreTimeout bounds a template read or write made on the frame path.
const xrStoreTimeout = 5 * time.Second

// Enrollment states, as xr.status messages name them.
const (
	enrollmentNone       = "not-enrolled"
	enrollmentCollecting = "enrolling"
	enrollmentDone       = "enrolled"
)

// observeBiometric records a window's match probability for the session.
// Only a change of state is persisted and audited: scores arrive every
// second per stream, and the bucket keeps what a rebuild needs.
func (h *trustHub) observeBiometric(ctx context.Context, sess session.Session, m trust.BiometricMatch) (trust.Assessment, error) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(m)
	if err != nil {
		return a, err
	}
	if a.Changed {
		h.persist(ctx, sess.ID, st, a, nil)
		h.changed(ctx, sess.ID, st.avatar, a)
	}
	return a, nil
}

// observeLiveness records a failed liveness check: replayed or impossible
// motion is an attack, and suspends the session.
func (h *trustHub) observeLiveness(ctx context.Context, sess session.Session, l trust.Liveness) (trust.Assessment, error) {
	st := h.tracker(ctx, sess)
	a, err := st.tracker.Observe(l)
	if err != nil {
		return a, err
	}
	if a.Changed {
		h.persist(ctx, sess.ID, st, a, nil)
		h.changed(ctx, sess.ID, st.avatar, a)
	}
	return a, nil
}

// deleteTemplateDigest is the action a step-up must be bound to before an
// avatar's template is deleted: SHA-256("zerorealm/delete-template/v1" ||
// 0x00 || avatar id).
func deleteTemplateDigest(avatarID string) []byte {
	h := sha256.New()
	h.Write([]byte("zerorealm/delete-template/v1"))
	h.Write([]byte{0})
	h.Write([]byte(avatarID))
	return h.Sum(nil)
}

// handleTemplate tells the avatar whether it has a template, and the digest
// a deletion must be stepped up with. The template itself never leaves the
// realm.
func (r *Realm) handleTemplate(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	resp := map[string]any{"enrolled": false, "delete_action_digest": digestHex(deleteTemplateDigest(p.Avatar.ID))}
	_, err := r.xr.templates.Get(req.Context(), p.Avatar.ID)
	switch {
	case err == nil:
		resp["enrolled"] = true
	case !errors.Is(err, store.ErrNotFound):
		r.edge.WriteError(w, req, err)
		return
	}
	if x := r.xr.session(p.Session.ID); x != nil {
		x.mu.Lock()
		resp["enrollment"] = x.enrollment()
		x.mu.Unlock()
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

// handleDeleteTemplate deletes the avatar's template after a step-up bound
// to its deletion. This node's streams of the avatar forget it at once and
// stop scoring; a new enrollment needs a new user-verified assertion.
func (r *Realm) handleDeleteTemplate(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	digest := deleteTemplateDigest(p.Avatar.ID)
	if err := r.stepups.consume(req.Context(), p.Session.ID, digest); err != nil {
		r.auditDeny(req, p.Avatar.ID, "DeleteTemplate", templateResource(p.Avatar.ID), err)
		r.edge.WriteError(w, req, err)
		return
	}
	if err := r.xr.templates.Delete(req.Context(), p.Avatar.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		r.edge.WriteError(w, req, err)
		return
	}
	r.xr.forgetTemplate(p.Avatar.ID)
	r.auditAllow(req, p.Avatar.ID, "DeleteTemplate", templateResource(p.Avatar.ID), "step-up bound to the template's deletion", nil)
	edge.WriteJSON(w, http.StatusOK, map[string]any{"deleted": true})
}

func templateResource(avatarID string) string { return "Template::" + quote(avatarID) }

// forgetTemplate makes this node's streams of the avatar forget its
// deleted template: each starts over, unenrolled.
func (h *xrHub) forgetTemplate(avatarID string) {
	h.engine.RemoveTemplate(avatarID)
	h.unlearn(avatarID)
	for _, x := range h.ofAvatar(avatarID) {
		x.mu.Lock()
		if x.stream != nil {
			h.sync(x, x.stream.Stats())
			h.m.stateBytes.Sub(float64(x.synced.StateBytes))
			x.stream.Close()
			x.stream = h.engine.NewStream(avatarID, nil)
			x.synced = biometrics.StreamStats{FramesRejected: map[string]uint64{}}
		}
		x.hasTemplate, x.enrolling = false, false
		x.mu.Unlock()
	}
}
