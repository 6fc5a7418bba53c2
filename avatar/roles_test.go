package avatar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

var bootstrapRoles = []string{"admin", "operator", "supervisor"}

// TestBootstrapPromotesExactlyOne registers many avatars at once through
// several services on one store, as several realm nodes would: exactly one
// gets the bootstrap roles, the others the default ones.
func TestBootstrapPromotesExactlyOne(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	var mu sync.Mutex
	var hooked []string
	nodes := make([]*Service, 3)
	for i := range nodes {
		s, err := New(ctx, st, Config{Origins: []string{testOrigin}, BootstrapRoles: bootstrapRoles, Logger: testLogger(t),
			OnBootstrap: func(_ context.Context, a *Avatar) { mu.Lock(); hooked = append(hooked, a.ID); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = s
	}
	const n = 12
	// Begin every ceremony first, then finish them all at once, so the
	// finishes race on the bootstrap key.
	type pending struct {
		s    *Service
		id   string
		resp []byte
	}
	var ps []pending
	for i := range n {
		s := nodes[i%len(nodes)]
		c, err := s.BeginRegistration(ctx, Registration{Name: fmt.Sprintf("user-%02d", i), DisplayName: "U"}, "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := webauthntest.New().Register(c.Options, testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, pending{s, c.ID, resp})
	}
	avatars := make([]*Avatar, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range ps {
		wg.Go(func() {
			<-start
			a, _, err := p.s.FinishRegistration(ctx, p.id, p.resp)
			if err != nil {
				t.Errorf("FinishRegistration %d: %v", i, err)
				return
			}
			avatars[i] = a
		})
	}
	close(start)
	wg.Wait()
	var admins []string
	for _, a := range avatars {
		if a == nil {
			continue
		}
		stored, err := nodes[0].Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case equalStrings(stored.Roles, bootstrapRoles):
			admins = append(admins, a.ID)
		case !equalStrings(stored.Roles, []string{"visitor"}):
			t.Errorf("avatar %s has roles %q, want the bootstrap or the default ones", a.Name, stored.Roles)
		}
	}
	if len(admins) != 1 {
		t.Fatalf("%d avatars promoted (%v), want exactly 1", len(admins), admins)
	}
	if len(hooked) != 1 || hooked[0] != admins[0] {
		t.Errorf("OnBootstrap called for %v, want once for %s", hooked, admins[0])
	}
	for _, s := range nodes {
		if id, err := s.Bootstrapped(ctx); err != nil || id != admins[0] {
			t.Errorf("Bootstrapped() = %q, %v; want %q", id, err, admins[0])
		}
	}
	// Later registrations are not promoted either.
	later, _ := register(t, nodes[1], webauthntest.New(), "latecomer")
	if !equalStrings(later.Roles, []string{"visitor"}) {
		t.Errorf("a later avatar has roles %q, want [visitor]", later.Roles)
	}
}

func TestBootstrapOffPromotesNobody(t *testing.T) {
	s := newTestService(t, Config{Origins: []string{testOrigin}})
	a, _ := register(t, s, webauthntest.New(), "first")
	if !equalStrings(a.Roles, []string{"visitor"}) {
		t.Fatalf("first avatar without bootstrap has roles %q, want [visitor]", a.Roles)
	}
	if id, err := s.Bootstrapped(context.Background()); err != nil || id != "" {
		t.Fatalf("Bootstrapped() = %q, %v; want none", id, err)
	}
}

// TestBootstrapTakesOverAnAbandonedClaim: a registration that claimed the
// bootstrap key and died before storing its avatar does not leave the
// realm without an administrator forever.
func TestBootstrapTakesOverAnAbandonedClaim(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := newTestService(t, Config{Origins: []string{testOrigin}, BootstrapRoles: bootstrapRoles, Now: clk.Now})
	if _, err := s.admins.Create(ctx, bootstrapKey, []byte(newAvatarID())); err != nil {
		t.Fatal(err)
	}
	// While the claim is fresh it may be a registration in flight.
	early, _ := register(t, s, webauthntest.New(), "early")
	if !equalStrings(early.Roles, []string{"visitor"}) {
		t.Fatalf("avatar registered beside a fresh claim has roles %q, want [visitor]", early.Roles)
	}
	clk.Advance(staleClaim + time.Second)
	late, _ := register(t, s, webauthntest.New(), "late")
	if !equalStrings(late.Roles, bootstrapRoles) {
		t.Fatalf("avatar registered after the claim went stale has roles %q, want %q", late.Roles, bootstrapRoles)
	}
}

func TestChangeRolesKeepsAnAdministrator(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, Config{Origins: []string{testOrigin}, BootstrapRoles: bootstrapRoles})
	boss, _ := register(t, s, webauthntest.New(), "boss")
	other, _ := register(t, s, webauthntest.New(), "other")

	// CheckRoleChange foresees the refusal, and the changes that pass.
	if err := s.CheckRoleChange(ctx, boss.ID, []string{"operator"}); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("CheckRoleChange(last admin loses admin) error = %v, want ErrLastAdmin", err)
	}
	for _, ok := range [][]string{{"admin"}, {"operator", "admin"}} {
		if err := s.CheckRoleChange(ctx, boss.ID, ok); err != nil {
			t.Errorf("CheckRoleChange(boss keeps admin: %q) = %v", ok, err)
		}
	}
	if err := s.CheckRoleChange(ctx, other.ID, nil); err != nil {
		t.Errorf("CheckRoleChange(a non-admin loses its roles) = %v", err)
	}
	if err := s.CheckRoleChange(ctx, other.ID, []string{"Bad Role"}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("CheckRoleChange(bad role) = %v, want ErrInvalidInput", err)
	}
	if err := s.CheckRoleChange(ctx, newAvatarID(), []string{"operator"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("CheckRoleChange(no such avatar) = %v, want ErrNotFound", err)
	}
	if _, err := s.ChangeRoles(ctx, boss.ID, []string{"operator"}); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("ChangeRoles(last admin loses admin) error = %v, want ErrLastAdmin", err)
	}
	if got, _ := s.Get(ctx, boss.ID); !equalStrings(got.Roles, bootstrapRoles) {
		t.Fatalf("refused change left roles %q, want %q", got.Roles, bootstrapRoles)
	}
	ch, err := s.ChangeRoles(ctx, other.ID, []string{"admin", "admin", "operator"})
	if err != nil {
		t.Fatal(err)
	}
	if !equalStrings(ch.Before, []string{"visitor"}) || !equalStrings(ch.After, []string{"admin", "operator"}) {
		t.Fatalf("ChangeRoles = %+v, want [visitor] -> [admin operator]", ch)
	}
	// With two administrators, one may step down; then the other may not.
	if _, err := s.ChangeRoles(ctx, boss.ID, []string{"supervisor"}); err != nil {
		t.Fatalf("ChangeRoles(one of two admins steps down): %v", err)
	}
	if err := s.CheckRoleChange(ctx, other.ID, nil); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("CheckRoleChange(the remaining admin) error = %v, want ErrLastAdmin", err)
	}
	if _, err := s.ChangeRoles(ctx, other.ID, nil); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("ChangeRoles(the remaining admin) error = %v, want ErrLastAdmin", err)
	}
	for _, bad := range [][]string{{"Admin"}, {""}, {"a b"}, make([]string, maxRoles+1)} {
		if _, err := s.ChangeRoles(ctx, other.ID, bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ChangeRoles(%q) error = %v, want ErrInvalidInput", bad, err)
		}
	}
	if _, err := s.ChangeRoles(ctx, newAvatarID(), []string{"operator"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ChangeRoles(unknown avatar) error = %v, want ErrNotFound", err)
	}
	if got, _ := s.Get(ctx, other.ID); !equalStrings(got.Roles, []string{"admin", "operator"}) {
		t.Fatalf("refused changes left roles %q, want [admin operator]", got.Roles)
	}
}

// TestConcurrentStepDowns: two administrators remove their own admin role
// at the same time, many times over; the realm always keeps one.
func TestConcurrentStepDowns(t *testing.T) {
	ctx := context.Background()
	st := newTestStore(t)
	a, err := New(ctx, st, Config{Origins: []string{testOrigin}, BootstrapRoles: bootstrapRoles, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, st, Config{Origins: []string{testOrigin}, BootstrapRoles: bootstrapRoles, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := register(t, a, webauthntest.New(), "xavier")
	y, _ := register(t, b, webauthntest.New(), "yolanda")
	for round := range 8 {
		if _, err := a.ChangeRoles(ctx, y.ID, []string{"admin"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ChangeRoles(ctx, x.ID, []string{"admin"}); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[0] = a.ChangeRoles(ctx, x.ID, []string{"operator"}) })
		wg.Go(func() { _, errs[1] = b.ChangeRoles(ctx, y.ID, []string{"operator"}) })
		wg.Wait()
		gx, _ := a.Get(ctx, x.ID)
		gy, _ := a.Get(ctx, y.ID)
		admins := 0
		for _, g := range []*Avatar{gx, gy} {
			if equalStrings(g.Roles, []string{"admin"}) {
				admins++
			}
		}
		if admins == 0 {
			t.Fatalf("round %d: both administrators stepped down (errors %v)", round, errs)
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, ErrLastAdmin) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

func TestRosterIgnoresAStaleAddition(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, Config{Origins: []string{testOrigin}})
	id := newAvatarID()
	other := newAvatarID()
	if err := s.rosterSet(ctx, other, rosterEntry{Admin: true, Rev: 1}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.rosterSet(ctx, id, rosterEntry{Admin: true, Rev: 5}, false); err != nil {
		t.Fatal(err)
	}
	// Removed having read revision 7; an addition written at 6 arrives late.
	if err := s.rosterSet(ctx, id, rosterEntry{Admin: false, Rev: 7}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.rosterSet(ctx, id, rosterEntry{Admin: true, Rev: 6}, false); err != nil {
		t.Fatal(err)
	}
	// A removal read at the revision an addition wrote comes after it.
	if err := s.rosterSet(ctx, other, rosterEntry{Admin: false, Rev: 1}, false); err != nil {
		t.Fatal(err)
	}
	e, err := s.admins.Get(ctx, rosterKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Value); got != fmt.Sprintf(`{"admins":{%q:{"admin":false,"rev":1},%q:{"admin":false,"rev":7}}}`, other, id) &&
		got != fmt.Sprintf(`{"admins":{%q:{"admin":false,"rev":7},%q:{"admin":false,"rev":1}}}`, id, other) {
		t.Fatalf("roster = %s, want both removed", got)
	}
}

func TestListPages(t *testing.T) {
	ctx := context.Background()
	s := newTestService(t, Config{Origins: []string{testOrigin}})
	names := []string{"carol", "alice", "dave", "bob", "erin"}
	for _, n := range names {
		register(t, s, webauthntest.New(), n)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > len(names) {
			t.Fatal("List does not end")
		}
		page, next, err := s.List(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			got = append(got, a.Name)
		}
		if next == "" {
			break
		}
		after = next
	}
	if want := []string{"alice", "bob", "carol", "dave", "erin"}; !equalStrings(got, want) {
		t.Fatalf("List pages = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		after string
		limit int
	}{{"", 0}, {"", maxListLimit + 1}, {"Not A Name", 10}} {
		if _, _, err := s.List(ctx, tc.after, tc.limit); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("List(%q, %d) error = %v, want ErrInvalidInput", tc.after, tc.limit, err)
		}
	}
}

func TestBootstrapConfig(t *testing.T) {
	st := newTestStore(t)
	for _, cfg := range []Config{
		{BootstrapRoles: []string{"operator"}},                 // no admin role
		{BootstrapRoles: []string{"Admin"}},                    // bad role
		{AdminRole: "boss", BootstrapRoles: []string{"admin"}}, // not the configured admin role
		{AdminRole: "Bad Role"},
	} {
		if _, err := New(context.Background(), st, cfg); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("New(%+v) error = %v, want ErrInvalidInput", cfg, err)
		}
	}
}

// FuzzNormalizeRoles feeds the role API's body, decoded as JSON, to the
// role check: what it accepts must be a set of well-formed roles that it
// accepts again unchanged; what it refuses must be ErrInvalidInput.
func FuzzNormalizeRoles(f *testing.F) {
	for _, seed := range []string{`["admin","operator"]`, `["a","a","b"]`, `[]`, `["Admin"]`, `[""]`, `["x\u0000y"]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var roles []string
		if json.Unmarshal(data, &roles) != nil {
			return
		}
		got, err := NormalizeRoles(roles)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("NormalizeRoles(%q) error = %v, want ErrInvalidInput", roles, err)
			}
			return
		}
		again, err := NormalizeRoles(got)
		if err != nil || !equalStrings(again, got) {
			t.Fatalf("NormalizeRoles(%q) = %q, which normalizes to %q, %v", roles, got, again, err)
		}
		for _, r := range got {
			if strings.ContainsRune(r, 0) || len(r) == 0 || len(r) > maxRoleLen {
				t.Fatalf("NormalizeRoles(%q) accepted %q", roles, r)
			}
		}
	})
}

// TestTamperedAdministratorKeepsItsClaims: an attacker who writes NATS
// alters or deletes the bootstrap administrator's record, so that it reads
// as absent, and registers: the claims of the absent avatar (its name, the
// bootstrap) are not taken over, however stale.
func TestTamperedAdministratorKeepsItsClaims(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := newTestStore(t)
	newNode := func() *Service {
		s, err := New(ctx, st, Config{Origins: []string{testOrigin}, BootstrapRoles: bootstrapRoles, Now: clk.Now, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	boss, _ := register(t, newNode(), webauthntest.New(), "boss")
	raw, err := st.JetStream().KeyValue(ctx, "ZR_"+avatarsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, attack := range []struct {
		name string
		do   func() error
	}{
		{"altered", func() error {
			_, err := raw.Put(ctx, boss.ID, []byte(`{"id":"`+boss.ID+`","roles":["visitor"]}`))
			return err
		}},
		{"deleted", func() error { return raw.Delete(ctx, boss.ID) }},
	} {
		if err := attack.do(); err != nil {
			t.Fatal(err)
		}
		clk.Advance(staleClaim + time.Second)
		s := newNode() // a node that has not seen the bootstrap
		if _, err := s.Get(ctx, boss.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: the administrator reads %v; want ErrNotFound", attack.name, err)
		}
		mallory, _ := register(t, s, webauthntest.New(), "mallory-"+attack.name)
		if !equalStrings(mallory.Roles, []string{"visitor"}) {
			t.Fatalf("%s: a registration after the administrator's record was %s has roles %q, want [visitor]", attack.name, attack.name, mallory.Roles)
		}
		c, err := s.BeginRegistration(ctx, Registration{Name: "boss", DisplayName: "Boss"}, "")
		if err == nil {
			resp, aerr := webauthntest.New().Register(c.Options, testOrigin)
			if aerr != nil {
				t.Fatal(aerr)
			}
			_, _, err = s.FinishRegistration(ctx, c.ID, resp)
		}
		if !errors.Is(err, ErrNameTaken) {
			t.Fatalf("%s: registering the name boss gave %v; want ErrNameTaken", attack.name, err)
		}
	}
}
