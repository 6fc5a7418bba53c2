package xr

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/store"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
)

// TemplateKeyFile, in the data dir, holds the key that encrypts biometric
// templates at rest unless Config.TemplateKeyFile names another file.
// Every node of a cluster needs the same key to read templates another
// node enrolled: copy the file to each node.
const TemplateKeyFile = "template.key"

// xrStoreTimeout bounds a template read or write made on the frame path.
const xrStoreTimeout = 5 * time.Second

// Enrollment states, as xr.status messages name them.
const (
	enrollmentNone       = "not-enrolled"
	enrollmentCollecting = "enrolling"
	enrollmentDone       = "enrolled"
	// enrollmentUnknown: the stream could not read whether the avatar has
	// a template, and reads again (settle.go).
	enrollmentUnknown = "unknown"
)

// API is the template API. Its routes are registered before the node has
// started; they answer through the edge, which keeps them at 503 until the
// realm is ready, and by then the service exists.
type API struct {
	edge *edge.Edge
	svc  func() *Service
}

// NewAPI serves the template API of the service svc returns once the realm
// is ready.
func NewAPI(e *edge.Edge, svc func() *Service) *API { return &API{edge: e, svc: svc} }

// Routes registers the template API.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/avatars/me/template", a.edge.Authed(a.handleTemplate))
	mux.HandleFunc("DELETE /v1/avatars/me/template", a.edge.Authed(a.handleDeleteTemplate))
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
func (a *API) handleTemplate(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	s := a.svc()
	resp := map[string]any{"enrolled": false, "delete_action_digest": "0x" + hex.EncodeToString(deleteTemplateDigest(p.Avatar.ID))}
	_, err := s.templates.Get(req.Context(), p.Avatar.ID)
	switch {
	case err == nil:
		resp["enrolled"] = true
	case !errors.Is(err, store.ErrNotFound):
		a.edge.WriteError(w, req, err)
		return
	}
	if x := s.reg.session(p.Session.ID); x != nil {
		x.mu.Lock()
		resp["enrollment"] = x.enrollment()
		x.mu.Unlock()
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

// handleDeleteTemplate deletes the avatar's template after a step-up bound
// to its deletion. This node's streams of the avatar forget it at once and
// stop scoring; a new enrollment needs a new user-verified assertion.
func (a *API) handleDeleteTemplate(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	s := a.svc()
	digest := deleteTemplateDigest(p.Avatar.ID)
	if err := s.deps.StepUps.Consume(req.Context(), p.Session.ID, digest); err != nil {
		s.deps.Audit.DenyQueued(req, p.Avatar.ID, "DeleteTemplate", templateResource(p.Avatar.ID), err)
		a.edge.WriteError(w, req, err)
		return
	}
	if err := s.templates.Delete(req.Context(), p.Avatar.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.edge.WriteError(w, req, err)
		return
	}
	s.forgetTemplate(p.Avatar.ID)
	// Enrollments set aside for the avatar's sessions, on any node, go
	// too: their consents came before the deletion, so none could resume,
	// and what the person asked to be gone is not kept until it expires.
	if s.aside != nil {
		if err := s.aside.ForgetAvatar(req.Context(), p.Avatar.ID); err != nil {
			s.log.Warn("forget the enrollments set aside for an avatar whose template was deleted; they expire unused", "avatar", p.Avatar.ID, "err", err)
		}
	}
	s.deps.Audit.AllowQueued(req, p.Avatar.ID, "DeleteTemplate", templateResource(p.Avatar.ID), "step-up bound to the template's deletion", nil)
	edge.WriteJSON(w, http.StatusOK, map[string]any{"deleted": true})
}

func templateResource(avatarID string) string { return "Template::" + strconv.Quote(avatarID) }

// forgetTemplate makes this node's streams of the avatar forget its
// deleted template: each starts over, unenrolled.
func (s *Service) forgetTemplate(avatarID string) {
	s.engine.RemoveTemplate(avatarID)
	s.reg.unlearn(avatarID)
	s.unstored.drop(avatarID)
	s.m.stateBytes.Add(float64(s.paused.dropAvatar(avatarID)))
	for _, x := range s.reg.ofAvatar(avatarID) {
		x.mu.Lock()
		if x.stream != nil {
			s.sync(x, x.stream.Stats())
			s.m.stateBytes.Sub(float64(x.synced.StateBytes))
			x.stream.Close()
			x.stream = s.engine.NewStream(avatarID, nil)
			x.synced = biometrics.StreamStats{FramesRejected: map[string]uint64{}}
		}
		x.hasTemplate = false
		x.mu.Unlock()
	}
}
