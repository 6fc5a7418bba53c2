package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

// tamperLog collects OnTamper reports.
type tamperLog struct {
	mu     sync.Mutex
	events []TamperEvent
}

func (l *tamperLog) add(ev TamperEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *tamperLog) list() []TamperEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]TamperEvent(nil), l.events...)
}

var testRecordKey = bytes.Repeat([]byte{7}, RecordKeySize)

// sealedFixture is a store with a record key, and the attacker's own
// connection to the same server: every permission, no key.
func sealedFixture(t *testing.T) (*Store, *tamperLog, jetstream.JetStream, *nats.Conn) {
	t.Helper()
	srv := natstest.RunServer(t)
	log := &tamperLog{}
	s := newTestStore(t, natstest.ConnectInProcess(t, srv), Config{RecordKey: testRecordKey, OnTamper: log.add})
	attacker := natstest.ConnectInProcess(t, srv)
	js, err := jetstream.New(attacker)
	if err != nil {
		t.Fatal(err)
	}
	return s, log, js, attacker
}

func TestSealedBucketRefusesForgedValues(t *testing.T) {
	ctx := context.Background()
	s, log, js, _ := sealedFixture(t)
	b, err := s.Bucket(ctx, BucketConfig{Name: "sessions", Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Bucket(ctx, BucketConfig{Name: "other", Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, "genuine", []byte(`{"admin":false}`)); err != nil {
		t.Fatal(err)
	}
	e, err := b.Get(ctx, "genuine")
	if err != nil || string(e.Value) != `{"admin":false}` {
		t.Fatalf("genuine value = %q, %v", e.Value, err)
	}
	if _, err := other.Put(ctx, "moved", []byte(`{"admin":true}`)); err != nil {
		t.Fatal(err)
	}

	raw, err := js.KeyValue(ctx, b.Name())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := raw.Get(ctx, "genuine")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.Value(), []byte("admin")) == false {
		t.Fatal("sealing must not hide the value: it authenticates, the template key encrypts")
	}
	rawOther, err := js.KeyValue(ctx, other.Name())
	if err != nil {
		t.Fatal(err)
	}
	movedValue, err := rawOther.Get(ctx, "moved")
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Replace(stored.Value(), []byte("false"), []byte("true!"), 1)

	cases := []struct {
		key, reason string
		value       []byte
	}{
		{"plain", ReasonNoSeal, []byte(`{"admin":true}`)},
		{"altered", ReasonSealDiffer, flipped},
		{"copied", ReasonSealDiffer, stored.Value()},          // genuine value under another key
		{"moved", ReasonSealDiffer, movedValue.Value()},       // genuine value of another bucket
		{"short", ReasonNoSeal, []byte{sealVersion, 1, 2, 3}}, // truncated
	}
	for _, c := range cases {
		if _, err := raw.Put(ctx, c.key, c.value); err != nil {
			t.Fatal(err)
		}
		for _, read := range []func() (Entry, error){
			func() (Entry, error) { return b.Get(ctx, c.key) },
			func() (Entry, error) { return b.Last(ctx, c.key) },
		} {
			_, err := read()
			if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrTampered) {
				t.Errorf("%s: read gave %v; want ErrNotFound and ErrTampered", c.key, err)
			}
		}
	}
	leader, err := s.Bucket(ctx, BucketConfig{Name: "sessions", Sealed: true, LeaderReads: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Get(ctx, "altered"); !errors.Is(err, ErrTampered) {
		t.Errorf("leader read of an altered value gave %v; want ErrTampered", err)
	}
	// Reported once each, however often read, with the reason.
	got := map[string]string{}
	for _, ev := range log.list() {
		if _, dup := got[ev.Key]; dup {
			t.Errorf("%s reported twice", ev.Key)
		}
		if ev.Bucket != "sessions" || ev.Revision == 0 {
			t.Errorf("report %+v: want bucket sessions and a revision", ev)
		}
		got[ev.Key] = ev.Reason
	}
	for _, c := range cases {
		if got[c.key] != c.reason {
			t.Errorf("%s reported with reason %q; want %q", c.key, got[c.key], c.reason)
		}
	}

	// Watch delivers a tampered value as a deletion, so caches drop it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates, err := b.Watch(wctx, ">")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]Entry{}
	for len(seen) < 1+len(cases) {
		select {
		case e := <-updates:
			seen[e.Key] = e
		case <-time.After(10 * time.Second):
			t.Fatalf("watch delivered %d of %d keys", len(seen), 1+len(cases))
		}
	}
	if e := seen["genuine"]; e.Deleted || e.Tampered || string(e.Value) != `{"admin":false}` {
		t.Errorf("watch of the genuine key = %+v", e)
	}
	for _, c := range cases {
		if e := seen[c.key]; !e.Deleted || !e.Tampered || e.Value != nil {
			t.Errorf("watch of %s = %+v; want a tampered deletion", c.key, e)
		}
	}
}

func TestSealedStreamRefusesForgedMessages(t *testing.T) {
	ctx := context.Background()
	s, log, _, attacker := sealedFixture(t)
	st := newTestStream(t, s, StreamConfig{Name: "LEDGER", Subjects: []string{"ledger.>"}, Sealed: true, AllowAtomic: true})

	var applied []string
	var mu sync.Mutex
	f, err := st.Follow(ctx, "ledger.>", func(m Msg) error {
		mu.Lock()
		applied = append(applied, string(m.Data))
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()

	seq1, err := st.AppendIfLast(ctx, "ledger.a", []byte("credit 10"), 0, WithMsgID("m1"))
	if err != nil {
		t.Fatal(err)
	}
	atomicSeqs, err := st.AppendAtomic(ctx, []AtomicMsg{{Subject: "ledger.b", Data: []byte("b1")}, {Subject: "ledger.c", Data: []byte("c1")}})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := st.Get(ctx, atomicSeqs[0])
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := st.Get(ctx, seq1)
	if err != nil || string(genuine.Data) != "credit 10" {
		t.Fatalf("genuine message = %q, %v", genuine.Data, err)
	}

	forge := func(subject string, data []byte, h nats.Header) uint64 {
		t.Helper()
		m := &nats.Msg{Subject: s.subject(subject), Data: data, Header: h}
		resp, err := attacker.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := st.parseAck(resp.Data)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	seal := genuine.Header.Get(SealHeader)
	forged := []struct {
		name, reason string
		seq          uint64
	}{
		{"no seal", ReasonNoSeal, forge("ledger.a", []byte("credit 5000000"), nil)},
		{"garbage seal", ReasonBadSeal, forge("ledger.a", []byte("credit 5000000"), nats.Header{SealHeader: {"v1.xyz"}})},
		{"seal of other data", ReasonSealDiffer, forge("ledger.a", []byte("credit 5000000"), nats.Header{SealHeader: {seal}, jetstream.MsgIDHeader: {"m1x"}})},
		{"copied to another subject", ReasonSealDiffer, forge("ledger.d", b1.Data, nats.Header{SealHeader: {b1.Header.Get(SealHeader)}})},
		{"message id changed", ReasonSealDiffer, forge("ledger.a", genuine.Data, nats.Header{SealHeader: {seal}, jetstream.MsgIDHeader: {"m2"}})},
	}
	// A genuine message appended again on its own subject verifies on its
	// own, but does not follow the message its seal names: the follower
	// refuses it.
	replayed := forge("ledger.b", b1.Data, nats.Header{SealHeader: {b1.Header.Get(SealHeader)}})
	if m, err := st.Get(ctx, replayed); err != nil || string(m.Data) != "b1" {
		t.Fatalf("a replayed genuine message read alone = %q, %v; its seal is genuine", m.Data, err)
	}
	for _, c := range forged {
		if _, err := st.Get(ctx, c.seq); !errors.Is(err, ErrTampered) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: Get gave %v; want ErrTampered and ErrNotFound", c.name, err)
		}
	}
	if _, err := st.GetLast(ctx, "ledger.a"); !errors.Is(err, ErrTampered) {
		t.Errorf("GetLast of a forged last message gave %v", err)
	}
	if _, err := st.GetLast(ctx, "ledger.a", FromLeader()); !errors.Is(err, ErrTampered) {
		t.Errorf("GetLast from the leader of a forged last message gave %v", err)
	}
	// The follower skips the forgeries and keeps going.
	seqAfter, err := st.Append(ctx, "ledger.e", []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WaitApplied(ctx, seqAfter); err != nil {
		t.Fatalf("follower stopped at a forged message: %v", err)
	}
	mu.Lock()
	if fmt.Sprint(applied) != "[credit 10 b1 c1 after]" {
		t.Errorf("projection applied %q; want only the genuine messages", applied)
	}
	mu.Unlock()
	reasons := map[uint64]string{}
	for _, ev := range log.list() {
		if ev.Stream != "LEDGER" {
			t.Errorf("report %+v: want stream LEDGER", ev)
		}
		if _, dup := reasons[ev.Revision]; dup {
			t.Errorf("message %d reported twice", ev.Revision)
		}
		reasons[ev.Revision] = ev.Reason
	}
	for _, c := range forged {
		if reasons[c.seq] != c.reason {
			t.Errorf("%s: reported %q; want %q", c.name, reasons[c.seq], c.reason)
		}
	}
	if reasons[replayed] != ReasonReplayed {
		t.Errorf("replayed message reported %q; want %q", reasons[replayed], ReasonReplayed)
	}
	if _, err := st.Append(ctx, "ledger.a", nil, WithHeader(SealHeader, "v1.x")); !errors.Is(err, ErrInvalid) {
		t.Errorf("a caller's own seal header gave %v; want ErrInvalid", err)
	}
}

// TestSealedBucketRefusesReplayedValues: a genuine value put back under
// its own key, later than the allowed clock skew after it was written, is
// refused as replayed.
func TestSealedBucketRefusesReplayedValues(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	log := &tamperLog{}
	s := newTestStore(t, natstest.ConnectInProcess(t, srv), Config{RecordKey: testRecordKey, OnTamper: log.add, MaxClockSkew: 50 * time.Millisecond})
	b, err := s.Bucket(ctx, BucketConfig{Name: "sessions", Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := b.Create(ctx, "s1", []byte(`{"revoked":false}`))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(natstest.ConnectInProcess(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := js.KeyValue(ctx, b.Name())
	if err != nil {
		t.Fatal(err)
	}
	old, err := raw.Get(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, "s1", []byte(`{"revoked":true}`), rev); err != nil {
		t.Fatal(err)
	}
	// Later than the skew: wait for the clock, never assert a duration.
	for time.Since(old.Created()) <= 100*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := raw.Put(ctx, "s1", old.Value()); err != nil {
		t.Fatal(err)
	}
	if e, err := b.Get(ctx, "s1"); !errors.Is(err, ErrTampered) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("replayed value read as %q, %v; want ErrTampered", e.Value, err)
	}
	if evs := log.list(); len(evs) != 1 || evs[0].Reason != ReasonReplayed {
		t.Fatalf("reports %+v; want one %q", evs, ReasonReplayed)
	}
}

// TestSealedNeedsRecordKey checks a store without a record key refuses to
// declare sealed buckets and streams, and that another key reads nothing.
func TestSealedNeedsRecordKey(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	plain := newTestStore(t, natstest.ConnectInProcess(t, srv), Config{})
	if _, err := plain.Bucket(ctx, BucketConfig{Name: "x", Sealed: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("sealed bucket without a key: %v", err)
	}
	if _, err := plain.Stream(ctx, StreamConfig{Name: "X", Subjects: []string{"x.>"}, Sealed: true}); !errors.Is(err, ErrInvalid) {
		t.Errorf("sealed stream without a key: %v", err)
	}
	if _, err := New(ctx, natstest.ConnectInProcess(t, srv), Config{RecordKey: []byte("short")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("short record key: %v", err)
	}
	a := newTestStore(t, natstest.ConnectInProcess(t, srv), Config{RecordKey: testRecordKey})
	b := newTestStore(t, natstest.ConnectInProcess(t, srv), Config{RecordKey: bytes.Repeat([]byte{8}, RecordKeySize)})
	ba, err := a.Bucket(ctx, BucketConfig{Name: "y", Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := b.Bucket(ctx, BucketConfig{Name: "y", Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ba.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := bb.Get(ctx, "k"); !errors.Is(err, ErrTampered) {
		t.Errorf("read under another key gave %v; want ErrTampered", err)
	}
}

// FuzzOpenMsg feeds arbitrary seal headers and data to the verifier: it
// must never panic, and never accept what it did not seal.
func FuzzOpenMsg(f *testing.F) {
	s, err := newSealer(testRecordKey, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("v1.", []byte("data"))
	f.Add(s.sealMsg("LEDGER", "ledger.a", "", "7", []byte("x")), []byte("y"))
	f.Add(s.sealMsg("LEDGER", "ledger.a", "", "", []byte("x")), []byte("x"))
	f.Fuzz(func(t *testing.T, header string, data []byte) {
		last, reason := s.openMsg("LEDGER", "ledger.a", "", header, data)
		if reason == "" && header != s.sealMsg("LEDGER", "ledger.a", "", last, data) {
			t.Fatalf("accepted header %q for %q", header, data)
		}
	})
}

// FuzzOpenValue does the same for bucket values.
func FuzzOpenValue(f *testing.F) {
	s, err := newSealer(testRecordKey, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	now := time.UnixMilli(1_800_000_000_000)
	f.Add(s.sealValue("b", "k", []byte("v"), now))
	f.Fuzz(func(t *testing.T, stored []byte) {
		v, reason := s.openValue("b", "k", stored, time.Time{}, time.Minute)
		if reason != "" {
			return
		}
		// What opens was sealed by us: resealing it at its own time
		// gives the same bytes.
		written := time.UnixMilli(int64(binary.BigEndian.Uint64(stored[1:9])))
		if !bytes.Equal(stored, s.sealValue("b", "k", v, written)) {
			t.Fatalf("accepted %x", stored)
		}
	})
}
