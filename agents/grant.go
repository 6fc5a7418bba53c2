package agents

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/zerorealm/zerorealm/internal/ident"
	"github.com/zerorealm/zerorealm/internal/risk"
)

// The Cedar actions (ids of Action entities, as scenes/vocab.go names
// them) a delegation may grant. ApproveCommand is not among them: the
// second person who approves a critical command is a person, never an
// agent.
const (
	ActionJoinScene       = "JoinScene"
	ActionEnterZone       = "EnterZone"
	ActionTransferAsset   = "TransferAsset"
	ActionCommandActuator = "CommandActuator"
	ActionViewTwin        = "ViewTwin"
)

var delegableActions = []string{ActionJoinScene, ActionEnterZone, ActionTransferAsset, ActionCommandActuator, ActionViewTwin}

// Kinds of resource a delegation names.
const (
	KindScene      = "Scene"
	KindTwin       = "Twin" // the twin and every actuator of it
	KindActuator   = "Actuator"
	KindCollection = "Collection" // every asset of the collection
)

// Resource is one thing a delegation covers. An actuator's ID is
// "twin/actuator", as its Cedar UID is.
type Resource struct {
	Kind string `json:"type"`
	ID   string `json:"id"`
}

func (r Resource) String() string { return r.Kind + `::"` + r.ID + `"` }

// covers reports whether r grants at least what o does: the same
// resource, or an actuator of the twin r names.
func (r Resource) covers(o Resource) bool {
	if r == o {
		return true
	}
	if r.Kind == KindTwin && o.Kind == KindActuator {
		tw, _, _ := strings.Cut(o.ID, "/")
		return tw == r.ID
	}
	return false
}

func (r Resource) valid() bool {
	switch r.Kind {
	case KindScene, KindTwin, KindCollection:
		return ident.Valid(r.ID)
	case KindActuator:
		tw, act, ok := strings.Cut(r.ID, "/")
		return ok && ident.Valid(tw) && ident.Valid(act)
	}
	return false
}

// Risk is an actuator command's risk, and the highest a delegation allows
// ([Limits].MaxRisk): the one vocabulary of internal/risk, which twin and
// scenes name too. Critical is never delegated: a critical command needs a
// second person.
type Risk = risk.Level

// The risks, lowest first.
const (
	RiskLow      = risk.Low
	RiskMedium   = risk.Medium
	RiskHigh     = risk.High
	RiskCritical = risk.Critical
)

// delegable reports whether a delegation may allow commands up to r: a
// known risk below critical. An agent never holds the power to a critical
// command, which always needs a second person.
func delegable(r Risk) bool { return r.AtMost(RiskHigh) }

// Limits bound what an agent may do within its scope. Values are the
// ledger's base units. Zero forbids: a delegation without transfers has
// TransferValue 0.
type Limits struct {
	// TransferValue is the most one transfer may move.
	TransferValue uint64 `json:"transfer_value"`
	// DailyValue is the most all transfers may move in one UTC day.
	DailyValue uint64 `json:"daily_value"`
	// AutoApproveValue: a transfer above it waits for the owner's
	// approval. At most TransferValue.
	AutoApproveValue uint64 `json:"auto_approve_value"`
	// CommandsPerMinute bounds actuator commands in any UTC minute.
	CommandsPerMinute uint32 `json:"commands_per_minute"`
	// MaxRisk is the highest risk of command allowed; never critical.
	// High-risk commands always wait for the owner's approval.
	MaxRisk Risk `json:"max_risk"`
}

// MaxCommandsPerMinute bounds Limits.CommandsPerMinute: an agent is not a
// control loop, and a higher rate would make the accounting the bottleneck.
const MaxCommandsPerMinute = 600

// MaxLifetime is the longest a delegation may be valid.
const MaxLifetime = 24 * time.Hour

// Bounds on a delegation's lists, so a token stays small enough for a
// header and its checks stay cheap.
const (
	maxResources = 64
	maxOwnerLen  = 64
)

// Grant is what one block of a delegation says: who holds it (Agent), for
// whom (Owner), what it may do and until when.
type Grant struct {
	Version int    `json:"v"`
	ID      string `json:"id"`
	// Parent and ParentDigest name the block this one narrows; empty in a
	// root. The digest binds the exact parent, so blocks cannot be spliced
	// between chains that share an id.
	Parent       string `json:"parent,omitempty"`
	ParentDigest string `json:"parent_digest,omitempty"`
	// Issuer is the EIP-55 address of the realm key that signs a root;
	// empty below the root, whose blocks the parent's holder signs.
	Issuer    string     `json:"iss,omitempty"`
	Owner     string     `json:"owner"`
	Agent     string     `json:"agent"` // the holder's Ed25519 public key, base64url without padding
	Actions   []string   `json:"actions"`
	Resources []Resource `json:"resources"`
	Limits    Limits     `json:"limits"`
	IssuedAt  time.Time  `json:"iat"`
	ExpiresAt time.Time  `json:"exp"`
}

// grantVersion is the only block format so far.
const grantVersion = 1

// NewDelegationID returns a fresh random delegation id.
func NewDelegationID() string {
	var b [16]byte
	randRead(b[:])
	return "dg_" + hex.EncodeToString(b[:])
}

func validDelegationID(s string) bool {
	if len(s) != 3+32 || !strings.HasPrefix(s, "dg_") {
		return false
	}
	_, err := hex.DecodeString(s[3:])
	return err == nil && strings.ToLower(s) == s
}

// validOwner accepts the avatar ids the realm issues ("av_" and hex) and
// nothing that could not be one: the id travels into Cedar and the audit.
func validOwner(s string) bool {
	if len(s) == 0 || len(s) > maxOwnerLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// EncodeAgentKey is the form a Grant names a holder's key in.
func EncodeAgentKey(pub ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

func decodeAgentKey(s string) (ed25519.PublicKey, bool) {
	if len(s) != 43 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(b), true
}

// AgentID names the agent that holds pub: "ag_" and the first 16 bytes of
// its SHA-256, in hex. An agent is its key; a new key is a new agent.
func AgentID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ag_" + hex.EncodeToString(sum[:16])
}

func validAgentID(s string) bool {
	return len(s) == 3+32 && strings.HasPrefix(s, "ag_") && isLowerHex(s[3:])
}

// validate checks what a block says on its own, before any signature or
// chain rule: every refusal is ReasonMalformed, ReasonTooLong or
// ReasonCritical.
func (g *Grant) validate(root bool) error {
	switch {
	case g.Version != grantVersion:
		return deny(ReasonMalformed, "block version %d: want %d", g.Version, grantVersion)
	case !validDelegationID(g.ID):
		return deny(ReasonMalformed, "id %.40q: want dg_ and 32 lower-case hex digits", g.ID)
	case !validOwner(g.Owner):
		return deny(ReasonMalformed, "owner %.70q: want an avatar id", g.Owner)
	}
	if _, ok := decodeAgentKey(g.Agent); !ok {
		return deny(ReasonMalformed, "agent %.50q: want an Ed25519 public key, base64url without padding", g.Agent)
	}
	if root {
		if g.Parent != "" || g.ParentDigest != "" {
			return deny(ReasonMalformed, "the root block names a parent")
		}
		if !validAddress(g.Issuer) {
			return deny(ReasonMalformed, "root issuer %.50q: want an EIP-55 address", g.Issuer)
		}
	} else {
		if !validDelegationID(g.Parent) || len(g.ParentDigest) != 64 || !isLowerHex(g.ParentDigest) {
			return deny(ReasonMalformed, "a derived block must name its parent's id and digest (64 hex digits)")
		}
		if g.Issuer != "" {
			return deny(ReasonMalformed, "a derived block names an issuer; its parent's holder signs it")
		}
	}
	if len(g.Actions) == 0 {
		return deny(ReasonMalformed, "no actions")
	}
	for i, a := range g.Actions {
		if !slices.Contains(delegableActions, a) {
			return deny(ReasonMalformed, "action %.40q: want one of %s", a, strings.Join(delegableActions, ", "))
		}
		if slices.Contains(g.Actions[:i], a) {
			return deny(ReasonMalformed, "action %s named twice", a)
		}
	}
	if len(g.Resources) == 0 || len(g.Resources) > maxResources {
		return deny(ReasonMalformed, "%d resources: want 1 to %d", len(g.Resources), maxResources)
	}
	for i, r := range g.Resources {
		if !r.valid() {
			return deny(ReasonMalformed, "resource %.80s: want Scene, Twin, Collection (an id) or Actuator (twin/actuator)", r)
		}
		if slices.Contains(g.Resources[:i], r) {
			return deny(ReasonMalformed, "resource %s named twice", r)
		}
	}
	l := g.Limits
	switch {
	case l.MaxRisk == RiskCritical:
		return deny(ReasonCritical, "max_risk critical: a critical command needs a second person, never an agent")
	case !delegable(l.MaxRisk):
		return deny(ReasonMalformed, "max_risk %.20q: want low, medium or high", l.MaxRisk)
	case l.AutoApproveValue > l.TransferValue:
		return deny(ReasonMalformed, "auto_approve_value %d above transfer_value %d", l.AutoApproveValue, l.TransferValue)
	case l.CommandsPerMinute > MaxCommandsPerMinute:
		return deny(ReasonMalformed, "commands_per_minute %d above %d", l.CommandsPerMinute, MaxCommandsPerMinute)
	case g.IssuedAt.IsZero() || g.ExpiresAt.IsZero():
		return deny(ReasonMalformed, "iat and exp are required")
	case !g.ExpiresAt.After(g.IssuedAt):
		return deny(ReasonMalformed, "exp %s is not after iat %s", g.ExpiresAt.Format(time.RFC3339), g.IssuedAt.Format(time.RFC3339))
	case g.ExpiresAt.Sub(g.IssuedAt) > MaxLifetime:
		return deny(ReasonTooLong, "valid for %s, more than %s", g.ExpiresAt.Sub(g.IssuedAt), MaxLifetime)
	}
	return nil
}

// narrows checks that child grants nothing parent does not: every refusal
// is ReasonWidens (or ReasonBrokenChain for another owner), naming what
// widens.
func (child *Grant) narrows(parent *Grant) error {
	if child.Owner != parent.Owner {
		return deny(ReasonBrokenChain, "block %s is for owner %s, its parent %s for %s", child.ID, child.Owner, parent.ID, parent.Owner)
	}
	for _, a := range child.Actions {
		if !slices.Contains(parent.Actions, a) {
			return deny(ReasonWidens, "block %s grants action %s, which its parent %s does not", child.ID, a, parent.ID)
		}
	}
	for _, r := range child.Resources {
		if !slices.ContainsFunc(parent.Resources, func(p Resource) bool { return p.covers(r) }) {
			return deny(ReasonWidens, "block %s grants %s, which its parent %s does not cover", child.ID, r, parent.ID)
		}
	}
	c, p := child.Limits, parent.Limits
	for _, l := range []struct {
		name          string
		child, parent uint64
	}{
		{"transfer_value", c.TransferValue, p.TransferValue},
		{"daily_value", c.DailyValue, p.DailyValue},
		{"auto_approve_value", c.AutoApproveValue, p.AutoApproveValue},
		{"commands_per_minute", uint64(c.CommandsPerMinute), uint64(p.CommandsPerMinute)},
		{"max_risk", uint64(c.MaxRisk.Rank()), uint64(p.MaxRisk.Rank())},
	} {
		if l.child > l.parent {
			return deny(ReasonWidens, "block %s raises %s above its parent %s's", child.ID, l.name, parent.ID)
		}
	}
	if child.ExpiresAt.After(parent.ExpiresAt) {
		return deny(ReasonWidens, "block %s expires at %s, after its parent %s (%s)", child.ID,
			child.ExpiresAt.Format(time.RFC3339), parent.ID, parent.ExpiresAt.Format(time.RFC3339))
	}
	if child.IssuedAt.Before(parent.IssuedAt) {
		return deny(ReasonWidens, "block %s is dated before its parent %s", child.ID, parent.ID)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
