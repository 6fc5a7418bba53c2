package biometrics_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/biometrics/synth"
	"github.com/zerorealm/zerorealm/internal/store"
)

// setAside is avatarID's 20 s enrollment set aside after seconds of
// person seed's motion, with the generator to go on with.
func setAside(t *testing.T, e *biometrics.Engine, avatarID string, seed int64, seconds int) (*biometrics.Enrollment, *synth.Generator, time.Time) {
	t.Helper()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := synth.NewPerson(seed).Session(1)
	s := e.NewStream(avatarID, nil)
	defer s.Close()
	s.StartEnrollment(20 * time.Second)
	if tmpl, _ := pushUntilEnrolled(t, s, g, &clock, seconds); tmpl != nil {
		t.Fatalf("a 20 s enrollment finished after %d s", seconds)
	}
	en := s.SetAsideEnrollment()
	if en == nil {
		t.Fatalf("nothing set aside after %d s", seconds)
	}
	return en, g, clock
}

// TestEnrollmentThroughTheStoreMakesTheSameTemplate: an enrollment set
// aside, sealed into the store and claimed back, as another node does,
// finishes into the very template the one kept in memory makes from the
// same motion, bit for bit.
func TestEnrollmentThroughTheStoreMakesTheSameTemplate(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	en, g, clock := setAside(t, e, "ada", 42, 10)
	as, err := biometrics.NewAsideStore(ctx, newStore(t), testKey(1), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	consent, closed := clock.Add(-time.Minute), clock
	sealed, err := as.Seal(biometrics.AsideEnrollment{Session: "s-1", Enrollment: en, ConsentAt: consent, ClosedAt: closed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Put(ctx, sealed); err != nil {
		t.Fatal(err)
	}
	got, ok, err := as.Claim(ctx, "ada", "s-1")
	if err != nil || !ok {
		t.Fatalf("Claim = %v, %v; want the enrollment", ok, err)
	}
	if got.Session != "s-1" || got.Avatar() != "ada" || !got.ConsentAt.Equal(consent) || !got.ClosedAt.Equal(closed) ||
		got.Enrollment.Collected() != en.Collected() || got.Enrollment.Want() != en.Want() {
		t.Fatalf("claimed %+v (%d of %d windows), want session s-1 of ada, %d of %d windows, consent %s, closed %s",
			got, got.Enrollment.Collected(), got.Enrollment.Want(), en.Collected(), en.Want(), consent, closed)
	}

	// The same 15 s of motion go to a stream resuming each.
	g.SetTime(g.TimeUS()+20_000_000, 0)
	frames := g.Frames(15*72, 72)
	// Each on an engine of its own: one engine would take the second
	// for a replay of the first.
	finish := func(en *biometrics.Enrollment) *biometrics.Template {
		t.Helper()
		s := newEngine(t).NewStream("ada", nil)
		defer s.Close()
		if err := s.ResumeEnrollment(en); err != nil {
			t.Fatal(err)
		}
		at := clock.Add(20 * time.Second)
		for _, ev := range push(s, frames, &at) {
			if ev.Kind == biometrics.EventEnrolled {
				return ev.Template
			}
		}
		t.Fatal("the resumed enrollment never finished")
		return nil
	}
	fromStore, fromMemory := finish(got.Enrollment), finish(en)
	a, _ := fromStore.MarshalBinary()
	b, _ := fromMemory.MarshalBinary()
	// Created and Updated are the streams' clocks, the same here.
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the template from the enrollment that went through the store differs from the one kept in memory")
	}
}

// TestEnrollmentSetAsideIsTakenOnce: a claim takes the enrollment out of
// the store, so that a second node finds nothing; the node that set it
// aside can remove its copy only while nobody took it; a value moved
// under another session or avatar does not open (and is removed); an
// avatar's are forgotten together; and they expire.
func TestEnrollmentSetAsideIsTakenOnce(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	st := newStore(t)
	as, err := biometrics.NewAsideStore(ctx, st, testKey(1), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ada, _, _ := setAside(t, e, "ada", 42, 6)
	bob, _, _ := setAside(t, e, "bob", 43, 6)
	put := func(session string, en *biometrics.Enrollment) uint64 {
		t.Helper()
		sealed, err := as.Seal(biometrics.AsideEnrollment{Session: session, Enrollment: en})
		if err != nil {
			t.Fatal(err)
		}
		rev, err := as.Put(ctx, sealed)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}

	// Claimed once.
	rev := put("s-ada", ada)
	if _, ok, err := as.Claim(ctx, "ada", "s-ada"); !ok || err != nil {
		t.Fatalf("first claim = %v, %v; want the enrollment", ok, err)
	}
	if _, ok, err := as.Claim(ctx, "ada", "s-ada"); ok || err != nil {
		t.Fatalf("second claim = %v, %v; want nothing: a node took it", ok, err)
	}
	if err := as.Release(ctx, "ada", "s-ada", rev); !errors.Is(err, biometrics.ErrAsideTaken) {
		t.Fatalf("Release after a claim = %v, want ErrAsideTaken", err)
	}

	// Released by the node that set it aside: nobody claims it then.
	rev = put("s-ada", ada)
	if err := as.Release(ctx, "ada", "s-ada", rev); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := as.Claim(ctx, "ada", "s-ada"); ok || err != nil {
		t.Fatalf("claim after a release = %v, %v; want nothing", ok, err)
	}
	// A newer write of the session is not released by the older revision.
	old := put("s-ada", ada)
	put("s-ada", ada)
	if err := as.Release(ctx, "ada", "s-ada", old); !errors.Is(err, biometrics.ErrAsideTaken) {
		t.Fatalf("Release of a replaced revision = %v, want ErrAsideTaken", err)
	}

	// A value copied under another session's key, or another avatar's,
	// does not open: the sealing binds both.
	raw, err := st.Bucket(ctx, store.BucketConfig{Name: biometrics.AsideBucket, TTL: 2 * time.Second, MaxValueSize: biometrics.MaxAsideBytes + 64, LeaderReads: true})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := raw.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v; want ada's one", keys, err)
	}
	v, err := raw.Get(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(v.Value), "ada") {
		t.Error("the stored value names its avatar in the clear")
	}
	adaKey, _, _ := strings.Cut(keys[0], ".")
	moved := map[string]string{"another session": adaKey + ".cy1tYWxsb3J5", "another avatar": "Ym9i." + strings.SplitN(keys[0], ".", 2)[1]}
	for what, key := range moved {
		if _, err := raw.Put(ctx, key, v.Value); err != nil {
			t.Fatal(err)
		}
		avatar, session := "ada", "s-mallory"
		if what == "another avatar" {
			avatar, session = "bob", "s-ada"
		}
		if _, ok, err := as.Claim(ctx, avatar, session); ok || !errors.Is(err, biometrics.ErrSealed) {
			t.Errorf("%s: claim of a moved value = %v, %v; want ErrSealed", what, ok, err)
		}
		if _, err := raw.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: a value that does not open is still stored: %v", what, err)
		}
	}

	// Forgetting ada forgets all her sessions, not bob's.
	put("s-ada-2", ada)
	put("s-bob", bob)
	if err := as.ForgetAvatar(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		avatar, session string
		want            bool
	}{{"ada", "s-ada", false}, {"ada", "s-ada-2", false}, {"bob", "s-bob", true}} {
		if _, ok, err := as.Claim(ctx, c.avatar, c.session); ok != c.want || err != nil {
			t.Errorf("claim %s after forgetting ada = %v, %v; want %v", c.session, ok, err, c.want)
		}
	}

	// They expire with the time an enrollment may resume.
	put("s-bob", bob)
	time.Sleep(3 * time.Second)
	if _, ok, err := as.Claim(ctx, "bob", "s-bob"); ok || err != nil {
		t.Fatalf("claim after the bucket's TTL = %v, %v; want nothing", ok, err)
	}
}

// TestEnrollmentEncodingRefusesWhatItDidNotWrite: the decoder takes back
// what the encoder wrote and refuses truncations and tampering with the
// header, with ErrEnrollment.
func TestEnrollmentEncodingRefusesWhatItDidNotWrite(t *testing.T) {
	e := newEngine(t)
	en, _, _ := setAside(t, e, "ada", 42, 6)
	b, err := en.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := biometrics.DecodeEnrollment("ada", b)
	if err != nil || back.Collected() != en.Collected() || back.Want() != en.Want() || back.AvatarID() != "ada" {
		t.Fatalf("DecodeEnrollment of an encoding = %+v, %v", back, err)
	}
	again, _ := back.AppendBinary(nil)
	if !reflect.DeepEqual(again, b) {
		t.Fatal("an enrollment decoded and encoded again is not the same bytes")
	}
	bad := map[string][]byte{
		"empty":          nil,
		"truncated":      b[:len(b)-1],
		"one byte more":  append(append([]byte{}, b...), 0),
		"version 2":      append([]byte{2}, b[1:]...),
		"more than want": withUint32(b, 7, uint32(en.Want()+1)),
		"want of one":    withUint32(b, 3, 1),
		"no windows":     withUint32(b, 7, 0),
		"a billion":      withUint32(b, 7, 1<<30),
	}
	for name, data := range bad {
		if _, err := biometrics.DecodeEnrollment("ada", data); !errors.Is(err, biometrics.ErrEnrollment) {
			t.Errorf("%s: error %v, want ErrEnrollment", name, err)
		}
	}
}

func withUint32(b []byte, at int, v uint32) []byte {
	out := append([]byte{}, b...)
	out[at], out[at+1], out[at+2], out[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return out
}
