package realm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/avatar"
	"github.com/zerorealm/zerorealm/avatar/session"
	"github.com/zerorealm/zerorealm/internal/audit"
	"github.com/zerorealm/zerorealm/realm/internal/edge"
	"github.com/zerorealm/zerorealm/trust"
)

// Request bodies of the WebAuthn endpoints. Credentials stay raw JSON: the
// avatar service parses exactly what the browser's toJSON() produced.
type (
	registerBeginRequest struct {
		Name        string `json:"name"`
		DisplayName string `json:"display_name"`
	}
	loginBeginRequest struct {
		Name string `json:"name"`
	}
	stepUpBeginRequest struct {
		ActionDigest string `json:"action_digest"`
	}
	finishRequest struct {
		CeremonyID   string          `json:"ceremony_id"`
		Credential   json.RawMessage `json:"credential"`
		ActionDigest string          `json:"action_digest"` // step-up only
		// UseCookie asks for the session as an HttpOnly cookie instead of a
		// token in the body: the web console's choice, so its scripts never
		// hold the token.
		UseCookie bool `json:"use_cookie"`
	}
)

func (f *finishRequest) validate() error {
	if f.CeremonyID == "" {
		return edge.BadRequest("ceremony_id is required: send the one the begin call returned")
	}
	if len(f.Credential) == 0 || string(f.Credential) == "null" {
		return edge.BadRequest("credential is required: send PublicKeyCredential.toJSON() of the browser's credential")
	}
	return nil
}

// parseDigest reads an action digest: empty, or 0x and 64 hex digits.
func parseDigest(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	h, ok := strings.CutPrefix(s, "0x")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, edge.BadRequest("action_digest must be 0x followed by 64 hex digits (a 32-byte digest)")
	}
	return b, nil
}

func digestHex(d []byte) string {
	if len(d) == 0 {
		return ""
	}
	return "0x" + hex.EncodeToString(d)
}

// answerBegin answers a begin call with the ceremony's options, or the
// error that kept it from starting.
func (r *Realm) answerBegin(w http.ResponseWriter, req *http.Request, c avatar.Ceremony, err error) {
	if err == nil {
		if r.pending != nil {
			r.pending.begun(c.ID)
		}
		var resp map[string]json.RawMessage
		if resp, err = beginResponse(c); err == nil {
			edge.WriteJSON(w, http.StatusOK, resp)
			return
		}
	}
	r.edge.WriteError(w, req, err)
}

// readFinish reads and checks a finish body, within the client's ceremony
// rate.
func (r *Realm) readFinish(w http.ResponseWriter, req *http.Request) (finishRequest, error) {
	var body finishRequest
	if err := r.admitCeremony(req, false); err != nil {
		return body, err
	}
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		return body, err
	}
	return body, body.validate()
}

// beginResponse is the standard {"publicKey": ...} options object with the
// ceremony id beside it.
func beginResponse(c avatar.Ceremony) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	if err := json.Unmarshal(c.Options, &out); err != nil {
		return nil, fmt.Errorf("ceremony options: %w", err)
	}
	id, _ := json.Marshal(c.ID)
	out["ceremony_id"] = id
	return out, nil
}

func (r *Realm) handleRegisterBegin(w http.ResponseWriter, req *http.Request) {
	if err := r.admitCeremony(req, true); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	var body registerBeginRequest
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	// A signed-in avatar adds a passkey to itself; anyone else creates a
	// new avatar. A request that presents a session must present a valid one.
	existing := ""
	if edge.PresentsCredentials(req) {
		p, err := r.edge.Authenticate(req)
		if err != nil {
			r.edge.WriteError(w, req, err)
			return
		}
		existing = p.Avatar.ID
		// A passkey outlives every session ("sign out everywhere" leaves
		// it), so a session alone must not add one: a stolen token would
		// become a permanent takeover. The owner confirms with a passkey
		// they already hold, bound to exactly this action.
		if err := r.stepups.consume(req.Context(), p.Session.ID, addPasskeyDigest(existing)); err != nil {
			r.auditDeny(req, existing, actionAddPasskey, "Avatar::"+quote(existing), err)
			r.edge.WriteError(w, req, err)
			return
		}
	}
	c, err := r.avatars.BeginRegistration(req.Context(), avatar.Registration{Name: body.Name, DisplayName: body.DisplayName}, existing)
	r.answerBegin(w, req, c, err)
}

func (r *Realm) handleRegisterFinish(w http.ResponseWriter, req *http.Request) {
	body, err := r.readFinish(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	av, cred, err := r.avatars.FinishRegistration(req.Context(), body.CeremonyID, body.Credential)
	if err != nil {
		r.auditDeny(req, "anonymous", "RegisterPasskey", "Ceremony::"+quote(body.CeremonyID), err)
		r.edge.WriteError(w, req, err)
		return
	}
	r.ceremonyFinished(body.CeremonyID)
	signals := map[string]any{"attestation_format": cred.AttestationFormat, "attested": cred.Attested, "synced": cred.BackupEligible}
	// Adding a passkey to a signed-in avatar does not start a new session;
	// every session of the avatar is told, so an owner sees a passkey
	// they did not add.
	if len(av.Credentials) > 1 {
		r.auditAllow(req, av.ID, actionAddPasskey, credentialResource(cred.ID),
			"a new passkey verified with user verification, after a step-up bound to adding it", signals)
		r.announcePasskeyAdded(av.ID, cred)
		edge.WriteJSON(w, http.StatusOK, map[string]any{"avatar": avatarView(av)})
		return
	}
	r.auditAllow(req, av.ID, "RegisterPasskey", credentialResource(cred.ID), "a new passkey verified with user verification", signals)
	r.startSession(w, req, av, cred, body.UseCookie, time.Now())
}

func (r *Realm) handleLoginBegin(w http.ResponseWriter, req *http.Request) {
	if err := r.admitCeremony(req, true); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	var body loginBeginRequest
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	c, err := r.avatars.BeginLogin(req.Context(), body.Name)
	r.answerBegin(w, req, c, err)
}

func (r *Realm) handleLoginFinish(w http.ResponseWriter, req *http.Request) {
	body, err := r.readFinish(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	as, err := r.avatars.FinishLogin(req.Context(), body.CeremonyID, body.Credential)
	if err != nil {
		r.refusedAssertion(req, "SignIn", body.CeremonyID, err)
		r.edge.WriteError(w, req, err)
		return
	}
	r.ceremonyFinished(body.CeremonyID)
	r.auditAllow(req, as.Avatar.ID, "SignIn", credentialResource(as.Credential.ID), "passkey assertion verified with user verification",
		map[string]any{"synced": as.BackupEligible, "device_assurance": as.Credential.DeviceAssurance()})
	r.startSession(w, req, as.Avatar, as.Credential, body.UseCookie, as.At)
}

// refusedAssertion audits a refused sign-in or step-up and, when the
// refusal is a cloned authenticator, ends every session of the avatar: two
// devices hold one key, and the realm cannot tell which is the owner's.
func (r *Realm) refusedAssertion(req *http.Request, action, ceremonyID string, err error) {
	var cloned *avatar.ClonedError
	if !errors.As(err, &cloned) {
		r.auditDeny(req, "anonymous", action, "Ceremony::"+quote(ceremonyID), err)
		return
	}
	ctx, cancel := edge.DetachForCleanup(req)
	defer cancel()
	credID := base64.RawURLEncoding.EncodeToString(cloned.CredentialID)
	sessions, lerr := r.sessions.List(ctx, cloned.AvatarID)
	if lerr != nil {
		r.log.Error("list sessions of a cloned credential's avatar", "avatar", cloned.AvatarID, "err", lerr)
	}
	for _, s := range sessions {
		r.trust.observeClone(ctx, s, credID)
	}
	n, rerr := r.sessions.RevokeAvatar(ctx, cloned.AvatarID, "cloned passkey detected: its signature counter went backwards")
	if rerr != nil {
		r.log.Error("revoke sessions after clone", "avatar", cloned.AvatarID, "err", rerr)
	}
	r.auditAsync(ctx, audit.Event{
		Actor: cloned.AvatarID, Action: action, Resource: credentialResource(cloned.CredentialID), Outcome: audit.Deny,
		Reasons: []string{"cloned authenticator: the signature counter went backwards", fmt.Sprintf("revoked %d session(s) and flagged the credential", n)},
		Signals: map[string]any{"credential": credID},
	})
}

// startSession issues the session after a verified passkey, records the
// passkey as trust evidence, and answers with the session.
func (r *Realm) startSession(w http.ResponseWriter, req *http.Request, av *avatar.Avatar, cred *avatar.Credential, useCookie bool, at time.Time) {
	token, sess, err := r.sessions.Create(req.Context(), av.ID, session.Meta{
		Credential: base64.RawURLEncoding.EncodeToString(cred.ID),
		Node:       r.cfg.Node,
		UserAgent:  req.UserAgent(),
	})
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if _, err := r.trust.observePasskey(req.Context(), sess, passkeyEvidence(cred, true, at)); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	concurrent := 1
	if list, err := r.sessions.List(req.Context(), av.ID); err == nil {
		var live []sessionAge
		now := time.Now()
		for _, s := range list {
			if !s.Revoked && now.Before(s.Expires) {
				live = append(live, sessionAge{id: s.ID, created: s.Created})
			}
		}
		concurrent = len(live)
		if r.cfg.MaxSessionsPerAvatar > 0 {
			r.limitSessions(req, av.ID, sess.ID, live)
			concurrent = min(concurrent, r.cfg.MaxSessionsPerAvatar)
		}
	}
	r.trust.observeSignIn(req.Context(), sess, r.edge.ClientAddress(req), max(concurrent, 1))
	a := r.trust.assess(req.Context(), sess)
	resp := map[string]any{
		"avatar":  avatarView(av),
		"session": sessionView(sess),
		"trust":   trustView(a),
	}
	if useCookie {
		r.edge.SetSessionCookie(w, token, sess.Expires)
		resp["csrf"] = sess.CSRF
	} else {
		resp["token"] = token
	}
	edge.WriteJSON(w, http.StatusOK, resp)
}

func passkeyEvidence(cred *avatar.Credential, userVerified bool, at time.Time) passkeySeen {
	return passkeySeen{At: at, UserVerified: userVerified, BackupEligible: cred.BackupEligible, BackedUp: cred.BackedUp, Attested: cred.Attested,
		Credential: base64.RawURLEncoding.EncodeToString(cred.ID)}
}

func (r *Realm) handleStepUpBegin(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	if err := r.admitCeremony(req, true); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	var body stepUpBeginRequest
	if err := edge.DecodeJSON(w, req, &body); err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	digest, err := parseDigest(body.ActionDigest)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	c, err := r.avatars.BeginStepUp(req.Context(), p.Avatar.ID, digest)
	r.answerBegin(w, req, c, err)
}

func (r *Realm) handleStepUpFinish(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	body, err := r.readFinish(w, req)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	digest, err := parseDigest(body.ActionDigest)
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	as, err := r.avatars.FinishStepUp(req.Context(), body.CeremonyID, p.Avatar.ID, digest, body.Credential)
	if err != nil {
		r.refusedAssertion(req, "StepUp", body.CeremonyID, err)
		r.edge.WriteError(w, req, err)
		return
	}
	r.ceremonyFinished(body.CeremonyID)
	a, err := r.trust.observePasskey(req.Context(), p.Session, passkeyEvidence(as.Credential, as.UserVerified, as.At))
	if err != nil {
		r.edge.WriteError(w, req, err)
		return
	}
	if len(digest) > 0 {
		if err := r.stepups.record(req.Context(), p.Session.ID, digest); err != nil {
			r.edge.WriteError(w, req, err)
			return
		}
	}
	r.auditAllow(req, p.Avatar.ID, "StepUp", credentialResource(as.Credential.ID), "fresh user-verified passkey assertion",
		map[string]any{"action_digest": digestHex(digest), "trust": a.Context()})
	edge.WriteJSON(w, http.StatusOK, map[string]any{"verified": true, "action_digest": digestHex(digest), "trust": trustView(a)})
}

// Views: the published JSON of avatars, passkeys, sessions and trust.

func avatarView(av *avatar.Avatar) map[string]any {
	passkeys := make([]map[string]any, 0, len(av.Credentials))
	for i := range av.Credentials {
		c := &av.Credentials[i]
		passkeys = append(passkeys, map[string]any{
			"id":                   base64.RawURLEncoding.EncodeToString(c.ID),
			"name":                 c.Name,
			"created":              c.Created,
			"last_used":            c.LastUsed,
			"attestation_format":   c.AttestationFormat,
			"aaguid":               hex.EncodeToString(c.AAGUID),
			"attested":             c.Attested,
			"synced":               c.BackupEligible,
			"cloned":               c.Cloned,
			"device_assurance":     c.DeviceAssurance(),
			"delete_action_digest": digestHex(deletePasskeyDigest(c.ID)),
		})
	}
	return map[string]any{
		"id":           av.ID,
		"name":         av.Name,
		"display_name": av.DisplayName,
		"roles":        nonNil(av.Roles),
		"wallets":      nonNil(av.Wallets),
		"created":      av.Created,
		"passkeys":     passkeys,
		// What a step-up must be bound to before this avatar adds a passkey.
		"add_passkey_action_digest": digestHex(addPasskeyDigest(av.ID)),
	}
}

func sessionView(s session.Session) map[string]any {
	return map[string]any{"id": s.ID, "created": s.Created, "last_seen": s.LastSeen, "expires": s.Expires, "node": s.Node}
}

func trustView(a trust.Assessment) map[string]any {
	list := a.Factors()
	factors := make([]map[string]any, 0, len(list))
	for _, f := range list {
		factors = append(factors, map[string]any{"name": f.Name, "value": f.Value, "effect": f.Effect})
	}
	return map[string]any{
		"state":       a.State,
		"score":       a.Score,
		"at":          a.At,
		"factors":     factors,
		"explanation": a.Explain(),
		"context":     a.Context(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func credentialResource(id []byte) string {
	return "Passkey::" + quote(base64.RawURLEncoding.EncodeToString(id))
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// actionAddPasskey is the audited action of adding a passkey to an
// avatar that already has one.
const actionAddPasskey = "AddPasskey"

// addPasskeyDigest is the action a step-up must be bound to before a
// passkey is added to an existing avatar:
// SHA-256("zerorealm/add-passkey/v1" || 0x00 || avatar id).
func addPasskeyDigest(avatarID string) []byte {
	return actionDigest("zerorealm/add-passkey/v1", []byte(avatarID))
}

// deletePasskeyDigest is the action a step-up must be bound to before a
// passkey is deleted: SHA-256("zerorealm/delete-passkey/v1" || 0x00 || id).
func deletePasskeyDigest(credentialID []byte) []byte {
	return actionDigest("zerorealm/delete-passkey/v1", credentialID)
}

// actionDigest is SHA-256(domain || 0x00 || subject): the domain names the
// action and its version, so a step-up for one action never fits another.
func actionDigest(domain string, subject []byte) []byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write(subject)
	return h.Sum(nil)
}

// ceremonyFinished stops counting a ceremony this node began: its record
// was taken by the finish.
func (r *Realm) ceremonyFinished(id string) {
	if r.pending != nil {
		r.pending.finished(id)
	}
}
