package identity

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/zerorealm/zerorealm/avatar"
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

// answerBegin answers a begin call with the ceremony's options, or the
// error that kept it from starting.
func (a *API) answerBegin(w http.ResponseWriter, req *http.Request, c avatar.Ceremony, err error) {
	if err == nil {
		if a.pending != nil {
			a.pending.begun(c.ID)
		}
		var resp map[string]json.RawMessage
		if resp, err = beginResponse(c); err == nil {
			edge.WriteJSON(w, http.StatusOK, resp)
			return
		}
	}
	a.edge.WriteError(w, req, err)
}

// readBegin reads a begin body, within the client's ceremony rate and the
// node's cap on pending ceremonies.
func (a *API) readBegin(w http.ResponseWriter, req *http.Request, body any) error {
	if err := a.admitCeremony(req, true); err != nil {
		return err
	}
	return edge.DecodeJSON(w, req, body)
}

// readFinish reads and checks a finish body, within the client's ceremony
// rate.
func (a *API) readFinish(w http.ResponseWriter, req *http.Request) (finishRequest, error) {
	var body finishRequest
	if err := a.admitCeremony(req, false); err != nil {
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

func (a *API) handleRegisterBegin(w http.ResponseWriter, req *http.Request) {
	var body registerBeginRequest
	if err := a.readBegin(w, req, &body); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	// A signed-in avatar adds a passkey to itself; anyone else creates a
	// new avatar. A request that presents a session must present a valid one.
	existing := ""
	if edge.PresentsCredentials(req) {
		p, err := a.edge.Authenticate(req)
		if err != nil {
			a.edge.WriteError(w, req, err)
			return
		}
		existing = p.Avatar.ID
		// A passkey outlives every session ("sign out everywhere" leaves
		// it), so a session alone must not add one: a stolen token would
		// become a permanent takeover. The owner confirms with a passkey
		// they already hold, bound to exactly this action.
		if err := a.StepUps.Consume(req.Context(), p.Session.ID, AddPasskeyDigest(existing)); err != nil {
			a.auditDeny(req, existing, ActionAddPasskey, AvatarResource(existing), err)
			a.edge.WriteError(w, req, err)
			return
		}
	}
	c, err := a.Ceremonies.BeginRegistration(req.Context(), avatar.Registration{Name: body.Name, DisplayName: body.DisplayName}, existing)
	a.answerBegin(w, req, c, err)
}

func (a *API) handleRegisterFinish(w http.ResponseWriter, req *http.Request) {
	verified := a.timeCeremony("registration")
	body, err := a.readFinish(w, req)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	av, cred, err := a.Ceremonies.FinishRegistration(req.Context(), body.CeremonyID, body.Credential)
	verified(err)
	if err != nil {
		a.auditDeny(req, "anonymous", "RegisterPasskey", "Ceremony::"+quote(body.CeremonyID), err)
		a.edge.WriteError(w, req, err)
		return
	}
	a.ceremonyFinished(body.CeremonyID)
	signals := map[string]any{"attestation_format": cred.AttestationFormat, "attested": cred.Attested, "synced": cred.BackupEligible}
	// Adding a passkey to a signed-in avatar does not start a new session;
	// every session of the avatar is told, so an owner sees a passkey
	// they did not add.
	if len(av.Credentials) > 1 {
		a.auditAllow(req, av.ID, ActionAddPasskey, CredentialResource(cred.ID),
			"a new passkey verified with user verification, after a step-up bound to adding it", signals)
		a.PasskeyAdded(av.ID, cred)
		edge.WriteJSON(w, http.StatusOK, map[string]any{"avatar": AvatarView(av)})
		return
	}
	a.auditAllow(req, av.ID, "RegisterPasskey", CredentialResource(cred.ID), "a new passkey verified with user verification", signals)
	a.startSession(w, req, av, cred, body.UseCookie, a.Now())
}

func (a *API) handleLoginBegin(w http.ResponseWriter, req *http.Request) {
	var body loginBeginRequest
	if err := a.readBegin(w, req, &body); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	c, err := a.Ceremonies.BeginLogin(req.Context(), body.Name)
	a.answerBegin(w, req, c, err)
}

func (a *API) handleLoginFinish(w http.ResponseWriter, req *http.Request) {
	verified := a.timeCeremony("sign-in")
	body, err := a.readFinish(w, req)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	as, err := a.Ceremonies.FinishLogin(req.Context(), body.CeremonyID, body.Credential)
	verified(err)
	if err != nil {
		a.refusedAssertion(req, "SignIn", body.CeremonyID, err)
		a.edge.WriteError(w, req, err)
		return
	}
	a.ceremonyFinished(body.CeremonyID)
	a.auditAllow(req, as.Avatar.ID, "SignIn", CredentialResource(as.Credential.ID), "passkey assertion verified with user verification",
		map[string]any{"synced": as.BackupEligible, "device_assurance": as.Credential.DeviceAssurance()})
	a.startSession(w, req, as.Avatar, as.Credential, body.UseCookie, as.At)
}

// refusedAssertion audits a refused sign-in or step-up and, when the
// refusal is a cloned authenticator, ends every session of the avatar: two
// devices hold one key, and the realm cannot tell which is the owner's.
func (a *API) refusedAssertion(req *http.Request, action, ceremonyID string, err error) {
	var cloned *avatar.ClonedError
	if !errors.As(err, &cloned) {
		a.auditDeny(req, "anonymous", action, "Ceremony::"+quote(ceremonyID), err)
		return
	}
	ctx, cancel := edge.DetachForCleanup(req)
	defer cancel()
	credID := base64.RawURLEncoding.EncodeToString(cloned.CredentialID)
	sessions, lerr := a.Sessions.List(ctx, cloned.AvatarID)
	if lerr != nil {
		a.Log.Error("list sessions of a cloned credential's avatar", "avatar", cloned.AvatarID, "err", lerr)
	}
	for _, s := range sessions {
		a.Trust.ObserveClone(ctx, s, credID)
	}
	n, _, rerr := a.revokeAvatar(ctx, cloned.AvatarID, "cloned passkey detected: its signature counter went backwards")
	if rerr != nil {
		a.Log.Error("revoke sessions after clone", "avatar", cloned.AvatarID, "err", rerr)
	}
	a.AuditNoWait(ctx, audit.Event{
		Actor: cloned.AvatarID, Action: action, Resource: CredentialResource(cloned.CredentialID), Outcome: audit.Deny,
		Reasons: []string{"cloned authenticator: the signature counter went backwards", fmt.Sprintf("revoked %d session(s) and flagged the credential", n)},
		Signals: map[string]any{"credential": credID},
	})
}

// passkeyEvidence is a verified passkey assertion as trust evidence.
func passkeyEvidence(cred *avatar.Credential, userVerified bool, at time.Time) trust.PasskeyAssertion {
	return trust.PasskeyAssertion{At: at, UserVerified: userVerified, BackupEligible: cred.BackupEligible, BackedUp: cred.BackedUp, Attested: cred.Attested,
		Credential: base64.RawURLEncoding.EncodeToString(cred.ID)}
}

func (a *API) handleStepUpBegin(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	var body stepUpBeginRequest
	if err := a.readBegin(w, req, &body); err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	digest, err := edge.ParseDigest(body.ActionDigest)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	c, err := a.Ceremonies.BeginStepUp(req.Context(), p.Avatar.ID, digest)
	a.answerBegin(w, req, c, err)
}

func (a *API) handleStepUpFinish(w http.ResponseWriter, req *http.Request, p edge.Principal) {
	verified := a.timeCeremony("step-up")
	body, err := a.readFinish(w, req)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	digest, err := edge.ParseDigest(body.ActionDigest)
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	as, err := a.Ceremonies.FinishStepUp(req.Context(), body.CeremonyID, p.Avatar.ID, digest, body.Credential)
	verified(err)
	if err != nil {
		a.refusedAssertion(req, "StepUp", body.CeremonyID, err)
		a.edge.WriteError(w, req, err)
		return
	}
	a.ceremonyFinished(body.CeremonyID)
	tr, err := a.Trust.ObservePasskey(req.Context(), p.Session, passkeyEvidence(as.Credential, as.UserVerified, as.At))
	if err != nil {
		a.edge.WriteError(w, req, err)
		return
	}
	if len(digest) > 0 {
		if err := a.StepUps.Record(req.Context(), p.Session.ID, digest); err != nil {
			a.edge.WriteError(w, req, err)
			return
		}
	}
	a.auditAllow(req, p.Avatar.ID, "StepUp", CredentialResource(as.Credential.ID), "fresh user-verified passkey assertion",
		map[string]any{"action_digest": edge.DigestHex(digest), "trust": tr.Context()})
	edge.WriteJSON(w, http.StatusOK, map[string]any{"verified": true, "action_digest": edge.DigestHex(digest), "trust": TrustView(tr)})
}

// timeCeremony starts timing the finish of a ceremony; the function it
// returns observes it once the authenticator's answer is verified (nil) or
// refused. A finish whose body is unreadable never reaches it: that is a
// malformed request, not a ceremony.
func (a *API) timeCeremony(ceremony string) func(error) {
	start := time.Now()
	return func(err error) {
		if a.CeremonyTimed == nil {
			return
		}
		outcome := "ok"
		if err != nil {
			outcome = "refused"
		}
		a.CeremonyTimed(ceremony, outcome, time.Since(start))
	}
}

// ceremonyFinished stops counting a ceremony this node began: its record
// was taken by the finish.
func (a *API) ceremonyFinished(id string) {
	if a.pending != nil {
		a.pending.finished(id)
	}
}
