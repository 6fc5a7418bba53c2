package twin

import (
	"bytes"
	"math"
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// The status query's and answer's digests are standard EIP-712, so a
// record of them can be checked with any wallet library.
func TestStatusDigestsMatchStandardEIP712(t *testing.T) {
	q := StatusQuery{Twin: "press-1", Command: [32]byte{1, 2, 3}, Nonce: math.MaxUint64, NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Query: 42, At: 1_700_000_010_000}
	qtd := apitypes.TypedData{
		Types: apitypes.Types{"EIP712Domain": domainTypes(), "CommandStatusQuery": {
			{Name: "twin", Type: "string"}, {Name: "command", Type: "bytes32"}, {Name: "nonce", Type: "uint64"}, {Name: "notBefore", Type: "uint64"},
			{Name: "expiry", Type: "uint64"}, {Name: "query", Type: "uint64"}, {Name: "at", Type: "uint64"}}},
		PrimaryType: "CommandStatusQuery", Domain: typedDomain(),
		Message: apitypes.TypedDataMessage{"twin": q.Twin, "command": q.Command.Hex(), "nonce": u64String(q.Nonce), "notBefore": u64String(q.NotBefore),
			"expiry": u64String(q.Expiry), "query": u64String(q.Query), "at": u64String(q.At)},
	}
	if got, want := q.Digest(), standardDigest(t, qtd); got != want {
		t.Errorf("query digest %s, go-ethereum %s", got.Hex(), want.Hex())
	}
	st := CommandStatus{Twin: "press-1", Command: q.Command, Query: 42, State: StateNotExecuted, Reason: "why", Since: 1_699_999_000_000, At: 1_700_000_011_000}
	std := apitypes.TypedData{
		Types: apitypes.Types{"EIP712Domain": domainTypes(), "CommandStatus": {
			{Name: "twin", Type: "string"}, {Name: "command", Type: "bytes32"}, {Name: "query", Type: "uint64"}, {Name: "state", Type: "string"},
			{Name: "reason", Type: "string"}, {Name: "since", Type: "uint64"}, {Name: "at", Type: "uint64"}}},
		PrimaryType: "CommandStatus", Domain: typedDomain(),
		Message: apitypes.TypedDataMessage{"twin": st.Twin, "command": st.Command.Hex(), "query": u64String(st.Query), "state": string(st.State),
			"reason": st.Reason, "since": u64String(st.Since), "at": u64String(st.At)},
	}
	if got, want := st.Digest(), standardDigest(t, std); got != want {
		t.Errorf("status digest %s, go-ethereum %s", got.Hex(), want.Hex())
	}
}

func statusSeeds(f *testing.F) (query, status []byte) {
	realm, _ := GenerateSigner()
	gw, _ := GenerateSigner()
	q := StatusQuery{Twin: "press-1", Command: [32]byte{9}, Nonce: 7, NotBefore: 1_700_000_000_000, Expiry: 1_700_000_003_000, Query: 42, At: 1_700_000_001_000}
	query = realm.SignStatusQuery(q).Encode()
	ack := gw.SignAck(Ack{Twin: "press-1", Actuator: "ram", Command: q.Command, Nonce: 7, Result: ResultDone, ValueMicro: 1, TargetMicro: 2, At: 3})
	status = gw.SignStatus(CommandStatus{Twin: "press-1", Command: q.Command, Query: 42, State: StateExecuted, Since: 1, At: 2}, &ack).Encode()
	f.Add(query)
	f.Add(status)
	f.Add(gw.SignStatus(CommandStatus{Twin: "press-1", Command: q.Command, Query: 42, State: StateUnknown, Since: 1, At: 2}, nil).Encode())
	f.Add([]byte(`{"query":{},"signature":"0x"}`))
	f.Add(bytes.Replace(status, []byte(`"executed"`), []byte(`"unknown"`), 1))
	return query, status
}

func FuzzDecodeSignedStatusQuery(f *testing.F) {
	statusSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sq, err := DecodeSignedStatusQuery(data)
		if err != nil {
			return
		}
		again, err := DecodeSignedStatusQuery(sq.Encode())
		if err != nil || again.Query != sq.Query || again.Signature != sq.Signature {
			t.Fatalf("round trip of %q: %+v, %v", data, again, err)
		}
		_, _ = sq.Signer()
	})
}

func FuzzDecodeSignedStatus(f *testing.F) {
	statusSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := DecodeSignedStatus(data)
		if err != nil {
			return
		}
		withAck := ss.Status.State == StateExecuted || ss.Status.State == StateRefused
		if withAck != (ss.Ack != nil) {
			t.Fatalf("DecodeSignedStatus(%q): state %s with ack %v", data, ss.Status.State, ss.Ack != nil)
		}
		again, err := DecodeSignedStatus(ss.Encode())
		if err != nil || again.Status != ss.Status || again.Signature != ss.Signature {
			t.Fatalf("round trip of %q: %+v, %v", data, again, err)
		}
		_, _ = ss.Signer()
	})
}
