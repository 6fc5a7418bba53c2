package agents

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// What the realm's HTTP edge needs to speak RFC 9449 to agents: reading a
// request's token and proof, and the WWW-Authenticate challenge of a
// refusal.

// ProofRequestFromHTTP reads the delegation token (Authorization: DPoP
// <token>) and the proof (exactly one DPoP header) of r. base is the
// realm's public URL: the proof's htu is compared with base's scheme and
// host and r's path, never with a Host header the client chose. Every
// error is a *DenyError.
func ProofRequestFromHTTP(r *http.Request, base *url.URL) (ProofRequest, error) {
	auths := r.Header.Values("Authorization")
	if len(auths) != 1 {
		return ProofRequest{}, deny(ReasonMalformed, "want one Authorization header, DPoP and the delegation token")
	}
	scheme, token, ok := strings.Cut(auths[0], " ")
	if !ok || !strings.EqualFold(scheme, "DPoP") {
		return ProofRequest{}, deny(ReasonMalformed, "Authorization: want the DPoP scheme and a delegation token")
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t") {
		return ProofRequest{}, deny(ReasonMalformed, "Authorization: want one delegation token after DPoP")
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		// RFC 9449 4.3: exactly one DPoP header.
		return ProofRequest{}, deny(ReasonProof, "want exactly one DPoP header, got %d", len(proofs))
	}
	u := url.URL{Scheme: base.Scheme, Host: base.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
	return ProofRequest{Method: r.Method, URL: u.String(), Token: token, Proof: proofs[0]}, nil
}

// Challenge is the WWW-Authenticate value for a request refused by
// Authenticate (RFC 9449 7.1 and 8): error use_dpop_nonce (send the
// DPoP-Nonce header with it), invalid_dpop_proof, or invalid_token.
func Challenge(err error) string {
	code := "invalid_token"
	switch ReasonOf(err) {
	case ReasonNonce:
		code = "use_dpop_nonce"
	case ReasonProof, ReasonProofBinding, ReasonProofStale, ReasonReplay:
		code = "invalid_dpop_proof"
	}
	desc := "not authenticated"
	var d *DenyError
	if errors.As(err, &d) {
		desc = string(d.Reason)
	}
	return `DPoP algs="EdDSA", error="` + code + `", error_description=` + strconv.Quote(desc)
}

// ApprovalDigest is what the owner's step-up signs to approve one action of
// an agent that waits for approval (pending is the realm's id of the
// waiting action, so that two equal actions need two approvals). It binds
// the agent, its leaf delegation and every field of the action.
func ApprovalDigest(a *Agent, act Action, pending string) [32]byte {
	h := sha256.New()
	h.Write([]byte("zerorealm agent approval v1\n"))
	for _, s := range []string{a.ID, a.Chain.Leaf().ID, act.Name, act.Resource.Kind, act.Resource.ID, string(act.Risk), pending} {
		// Length-prefixed, so that no two field lists hash alike.
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], act.Value)
	h.Write(v[:])
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Path is the chain for the audit: which person authorized this, through
// which agents, with each delegation: "av_... > ag_... (dg_...) > ...".
func (c *Chain) Path() string { return c.derived().path }
