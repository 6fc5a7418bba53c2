package session

import (
	"encoding/json"
	"fmt"
	"time"
)

// recordVersion lets a later format be told apart from this one.
const recordVersion = 1

// record is a session as stored under its ID. It holds the token's hash,
// never the token.
type record struct {
	Version       int       `json:"v"`
	Hash          []byte    `json:"hash,omitempty"` // SHA-256 of the token's secret; empty in a placeholder
	Avatar        string    `json:"avatar"`
	Credential    string    `json:"credential,omitempty"`
	Created       time.Time `json:"created,omitzero"`
	LastSeen      time.Time `json:"lastSeen,omitzero"`
	Expires       time.Time `json:"expires"`
	Revoked       bool      `json:"revoked,omitempty"`
	RevokedAt     time.Time `json:"revokedAt,omitzero"`
	RevokedReason string    `json:"revokedReason,omitempty"`
	CSRF          string    `json:"csrf,omitempty"`
	Node          string    `json:"node,omitempty"`
	UserAgent     string    `json:"userAgent,omitempty"`
}

func (r record) marshal() ([]byte, error) {
	r.Version = recordVersion
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("session: encode record: %w", err)
	}
	return b, nil
}

func unmarshalRecord(b []byte) (record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("decode: %w", err)
	}
	if r.Version != recordVersion {
		return record{}, fmt.Errorf("record version %d, want %d", r.Version, recordVersion)
	}
	return r, nil
}

func (r record) session(id string) Session {
	return Session{
		ID:            id,
		Avatar:        r.Avatar,
		Credential:    r.Credential,
		Created:       r.Created,
		LastSeen:      r.LastSeen,
		Expires:       r.Expires,
		Revoked:       r.Revoked,
		RevokedAt:     r.RevokedAt,
		RevokedReason: r.RevokedReason,
		CSRF:          r.CSRF,
		Node:          r.Node,
		UserAgent:     r.UserAgent,
	}
}
