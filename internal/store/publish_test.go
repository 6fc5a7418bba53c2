package store

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestParseAck checks the acknowledgement reader against the shapes the
// server writes: the direct path for a success, encoding/json for the
// rest, with refusals kept as *jetstream.APIError so conflicts are seen.
func TestParseAck(t *testing.T) {
	st := &Stream{name: "ZR_LEDGER", ackPrefix: []byte(`{"stream":"ZR_LEDGER","seq":`)}
	for _, tc := range []struct {
		ack      string
		seq      uint64
		conflict bool
		busy     bool
		invalid  bool
	}{
		{ack: `{"stream":"ZR_LEDGER","seq":42}`, seq: 42},
		{ack: `{"stream":"ZR_LEDGER","seq":7,"duplicate":true}`, seq: 7},
		{ack: `{"stream":"ZR_LEDGER","seq":9,"domain":"hub"}`, seq: 9},
		{ack: `{"seq":11,"stream":"ZR_LEDGER"}`, seq: 11}, // another field order
		{ack: `{"stream":"ZR_LEDGER","seq":18446744073709551615}`, seq: 18446744073709551615},
		{ack: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"ZR_LEDGER","seq":0}`, conflict: true},
		{ack: `{"error":{"code":400,"err_code":10164,"description":"wrong last sequence"}}`, conflict: true, busy: true},
		{ack: `{"stream":"OTHER","seq":3}`, invalid: true},
		{ack: `{"stream":"ZR_LEDGER","seq":}`, invalid: true},
		{ack: `not json`, invalid: true},
		{ack: ``, invalid: true},
	} {
		seq, err := st.parseAck([]byte(tc.ack))
		switch {
		case tc.invalid:
			if !errors.Is(err, jetstream.ErrInvalidJSAck) {
				t.Errorf("parseAck(%q) = %d, %v; want ErrInvalidJSAck", tc.ack, seq, err)
			}
		case tc.conflict:
			if !isConflictCode(err) || subjectBusy(err) != tc.busy {
				t.Errorf("parseAck(%q) = %d, %v; want a conflict (busy %v)", tc.ack, seq, err, tc.busy)
			}
		default:
			if err != nil || seq != tc.seq {
				t.Errorf("parseAck(%q) = %d, %v; want %d", tc.ack, seq, err, tc.seq)
			}
		}
	}
}
