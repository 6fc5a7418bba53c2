package policy

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

func loadTestdata(t testing.TB) *Set {
	t.Helper()
	s, err := Load(os.DirFS("testdata"), "realm.cedar", "foundry.cedar")
	if err != nil {
		t.Fatalf("Load(testdata) error: %v", err)
	}
	return s
}

func avatar(id string, attrs map[string]any, parents ...UID) Entity {
	return Entity{UID: UID{"Avatar", id}, Parents: parents, Attrs: attrs}
}

func trusted(score float64) map[string]any {
	return map[string]any{"trust_state": "trusted", "trust_score": score}
}

func TestDecide(t *testing.T) {
	s := loadTestdata(t)
	hall := Entity{UID: UID{"Scene", "hall"}, Attrs: map[string]any{"public": true, "members": []any{UID{"Group", "guild"}}}}
	press := Entity{UID: UID{"Actuator", "press-1"}, Parents: []UID{{"Zone", "press-line"}}, Attrs: map[string]any{"max_value": 100}}
	setSpeed := Entity{UID: UID{"Action", "set-speed"}, Parents: []UID{{"Action", "actuate"}}}
	operator := func(state string) Entity {
		return avatar("op", map[string]any{"trust_state": state, "trust_score": 0.9}, UID{"Role", "operator"})
	}
	command := func(shift string, entities ...Entity) Request {
		return Request{
			Principal: UID{"Avatar", "op"}, Action: UID{"Action", "set-speed"}, Resource: press.UID,
			Context:  map[string]any{"zone": "press-line", "value": 80, "shift": shift},
			Entities: entities,
		}
	}
	enter := func(principal Entity) Request {
		return Request{Principal: principal.UID, Action: UID{"Action", "enter"}, Resource: hall.UID, Entities: []Entity{principal, hall}}
	}

	tests := []struct {
		name         string
		req          Request
		wantAllow    bool
		wantPolicies []string
		wantReason   string
		wantErrors   []string // policy ids with evaluation errors
	}{
		{
			name: "permit", req: enter(avatar("a", trusted(0.7))), wantAllow: true,
			wantPolicies: []string{"trusted-avatars-enter-public-scenes"},
			wantReason:   `permitted by policy "trusted-avatars-enter-public-scenes" (realm.cedar:7)`,
		},
		{
			name: "permit by group membership", req: enter(avatar("a", trusted(0.1), UID{"Group", "guild"})), wantAllow: true,
			wantPolicies: []string{"members-enter-their-scenes"},
			wantReason:   `permitted by policy "members-enter-their-scenes" (realm.cedar:11)`,
		},
		{
			name: "two permits", req: enter(avatar("a", trusted(0.7), UID{"Group", "guild"})), wantAllow: true,
			wantPolicies: []string{"trusted-avatars-enter-public-scenes", "members-enter-their-scenes"},
			wantReason:   `permitted by policies "trusted-avatars-enter-public-scenes" (realm.cedar:7), "members-enter-their-scenes" (realm.cedar:11)`,
		},
		{
			name: "default deny", req: enter(avatar("a", trusted(0.5))),
			wantReason: `no policy permits Action::"enter" on Scene`,
		},
		{
			name: "forbid overrides permit", req: enter(avatar("a", map[string]any{"trust_state": "suspended", "trust_score": 0.9})),
			wantPolicies: []string{"suspended-avatars-do-nothing"},
			wantReason:   `forbidden by policy "suspended-avatars-do-nothing" (realm.cedar:3)`,
		},
		{
			name: "evaluation errors deny and are reported", req: enter(avatar("a", nil)),
			wantReason: `no policy permits Action::"enter" on Scene; evaluation errors: suspended-avatars-do-nothing: `,
			wantErrors: []string{"suspended-avatars-do-nothing", "trusted-avatars-enter-public-scenes"},
		},
		{
			name: "owner transfers with a fresh passkey",
			req: Request{
				Principal: UID{"Avatar", "a"}, Action: UID{"Action", "transfer"}, Resource: UID{"Asset", "sword"},
				Context:  map[string]any{"passkey_age": 5 * time.Minute},
				Entities: []Entity{avatar("a", trusted(0.7)), {UID: UID{"Asset", "sword"}, Attrs: map[string]any{"owner": UID{"Avatar", "a"}}}},
			},
			wantAllow: true, wantPolicies: []string{"owners-transfer-their-assets"},
			wantReason: `permitted by policy "owners-transfer-their-assets" (realm.cedar:15)`,
		},
		{
			name: "critical transfer without second approver",
			req: Request{
				Principal: UID{"Avatar", "a"}, Action: UID{"Action", "transfer"}, Resource: UID{"Asset", "sword"},
				Context:  map[string]any{"passkey_age": 5 * time.Minute, "risk": "critical"},
				Entities: []Entity{avatar("a", trusted(0.7)), {UID: UID{"Asset", "sword"}, Attrs: map[string]any{"owner": UID{"Avatar", "a"}}}},
			},
			wantPolicies: []string{"realm.cedar#4"},
			wantReason:   `forbidden by policy "realm.cedar#4" (realm.cedar:20)`,
		},
		{
			name: "action group from request entities", req: command("day-1", operator("trusted"), press, setSpeed),
			wantAllow: true, wantPolicies: []string{"foundry-operators-command"},
			wantReason: `permitted by policy "foundry-operators-command" (foundry.cedar:3)`,
		},
		{
			name: "action outside the group", req: command("day-1", operator("trusted"), press),
			wantReason: `no policy permits Action::"set-speed" on Actuator`,
		},
		{
			name: "scene forbid", req: command("night", operator("trusted"), press, setSpeed),
			wantPolicies: []string{"foundry-no-commands-at-night"},
			wantReason:   `forbidden by policy "foundry-no-commands-at-night" (foundry.cedar:15)`,
		},
		{
			name: "two forbids", req: command("night", operator("suspended"), press, setSpeed),
			wantPolicies: []string{"suspended-avatars-do-nothing", "foundry-no-commands-at-night"},
			wantReason:   `forbidden by policies "suspended-avatars-do-nothing" (realm.cedar:3), "foundry-no-commands-at-night" (foundry.cedar:15)`,
		},
		{
			name: "any action on one resource",
			req: Request{
				Principal: UID{"Avatar", "av_supervisor"}, Action: UID{"Action", "inspect"}, Resource: press.UID,
				Entities: []Entity{avatar("av_supervisor", trusted(0.9)), press},
			},
			wantAllow: true, wantPolicies: []string{"foundry.cedar#2"},
			wantReason: `permitted by policy "foundry.cedar#2" (foundry.cedar:19)`,
		},
		{
			name:       "unknown action and type",
			req:        Request{Principal: UID{"Avatar", "a"}, Action: UID{"Action", "fly"}, Resource: UID{"Cloud", "c"}, Entities: []Entity{avatar("a", trusted(1))}},
			wantReason: `no policy permits Action::"fly" on Cloud`,
		},
	}
	// Each case is decided twice: with every entity in the request, and
	// with all but the first converted in advance as Shared entities, which
	// must not change a decision (the action group of the command cases is
	// then found among the shared ones).
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decideBothWays(t, s, tt.req, func(t *testing.T, d Decision) {
				if d.Allow != tt.wantAllow {
					t.Errorf("Decide().Allow = %v, want %v (%s)", d.Allow, tt.wantAllow, d.Reason)
				}
				if !slices.Equal(d.Policies, tt.wantPolicies) {
					t.Errorf("Decide().Policies = %q, want %q", d.Policies, tt.wantPolicies)
				}
				if d.Reason != tt.wantReason && !(tt.wantErrors != nil && strings.HasPrefix(d.Reason, tt.wantReason)) {
					t.Errorf("Decide().Reason = %q, want %q", d.Reason, tt.wantReason)
				}
				var errIDs []string
				for _, e := range d.Errors {
					errIDs = append(errIDs, e[:strings.Index(e, ": ")])
				}
				if !slices.Equal(errIDs, tt.wantErrors) {
					t.Errorf("Decide().Errors = %q, want errors from %q", d.Errors, tt.wantErrors)
				}
			})
		})
	}
}

func decideBothWays(t *testing.T, s *Set, req Request, check func(*testing.T, Decision)) {
	t.Run("inline", func(t *testing.T) {
		d, err := s.Decide(context.Background(), req)
		if err != nil {
			t.Fatalf("Decide() error: %v", err)
		}
		check(t, d)
	})
	t.Run("shared", func(t *testing.T) {
		if len(req.Entities) < 2 {
			t.Skip("nothing to share")
		}
		shared, err := NewEntities(req.Entities[1:])
		if err != nil {
			t.Fatalf("NewEntities() error: %v", err)
		}
		if shared.Len() != len(req.Entities)-1 {
			t.Fatalf("Len() = %d, want %d", shared.Len(), len(req.Entities)-1)
		}
		split := req
		split.Entities, split.Shared = req.Entities[:1], shared
		d, err := s.Decide(context.Background(), split)
		if err != nil {
			t.Fatalf("Decide() error: %v", err)
		}
		check(t, d)
	})
}

func TestDecideInvalidRequest(t *testing.T) {
	s := loadTestdata(t)
	valid := func() Request {
		return Request{Principal: UID{"Avatar", "a"}, Action: UID{"Action", "enter"}, Resource: UID{"Scene", "hall"}}
	}
	tests := []struct {
		name    string
		mutate  func(*Request)
		wantMsg string
	}{
		{"empty principal", func(r *Request) { r.Principal = UID{} }, `empty principal ::""`},
		{"principal without id", func(r *Request) { r.Principal.ID = "" }, `empty principal Avatar::""`},
		{"empty resource", func(r *Request) { r.Resource = UID{} }, "empty resource"},
		{"action of the wrong type", func(r *Request) { r.Action.Type = "Verb" }, "type must be Action"},
		{"type that is not a Cedar name", func(r *Request) { r.Resource.Type = "Scene Hall" }, `resource: entity type "Scene Hall" is not a Cedar name`},
		{"unsupported context value", func(r *Request) { r.Context = map[string]any{"trust": map[string]any{"score": uint8(3)}} }, "context.trust.score: unsupported value type uint8"},
		{"nil context value", func(r *Request) { r.Context = map[string]any{"x": nil} }, "context.x: nil value"},
		{"NaN", func(r *Request) { r.Context = map[string]any{"s": []any{1, math.NaN()}} }, "context.s[1]: NaN is not a decimal"},
		{"decimal out of range", func(r *Request) { r.Context = map[string]any{"d": 1e15} }, "context.d: 1e+15 is out of the decimal range"},
		{"self-containing value", func(r *Request) {
			m := map[string]any{}
			m["m"] = m
			r.Context = m
		}, "nested deeper than 32"},
		{"bad entity attribute", func(r *Request) {
			r.Entities = []Entity{{UID: UID{"Avatar", "a"}, Attrs: map[string]any{"age": uint(3)}}}
		}, `entity Avatar::"a".attrs.age: unsupported value type uint`},
		{"bad parent", func(r *Request) {
			r.Entities = []Entity{{UID: UID{"Avatar", "a"}, Parents: []UID{{"", "g"}}}}
		}, `entity Avatar::"a".parents: entity ::"g" has no type`},
		{"entity given twice", func(r *Request) {
			r.Entities = []Entity{{UID: UID{"Avatar", "a"}}, {UID: UID{"Avatar", "a"}}}
		}, `entity Avatar::"a" given twice`},
		{"entity given twice among many", func(r *Request) {
			for i := range fewEntities + 1 {
				r.Entities = append(r.Entities, Entity{UID: UID{"Zone", strconv.Itoa(i)}})
			}
			r.Entities = append(r.Entities, Entity{UID: UID{"Zone", "3"}})
		}, `entity Zone::"3" given twice`},
		{"entity both in the request and shared", func(r *Request) {
			shared, err := NewEntities([]Entity{{UID: UID{"Scene", "hall"}}, {UID: UID{"Avatar", "a"}}})
			if err != nil {
				t.Fatal(err)
			}
			r.Entities, r.Shared = []Entity{{UID: UID{"Avatar", "a"}, Attrs: map[string]any{"trust_state": "trusted"}}}, shared
		}, `entity Avatar::"a" given twice (also in the shared entities)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := valid()
			tt.mutate(&req)
			d, err := s.Decide(context.Background(), req)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("Decide() error = %v, want ErrInvalidRequest", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Decide() error = %q, want it to contain %q", err, tt.wantMsg)
			}
			if d.Allow || d.Reason == "" {
				t.Errorf("Decide() = %+v, want a deny with a reason", d)
			}
		})
	}
	if _, err := s.Decide(context.Background(), valid()); err != nil {
		t.Errorf("Decide(valid) error: %v", err)
	}
}

func TestNewEntitiesInvalid(t *testing.T) {
	for _, tt := range []struct {
		name    string
		list    []Entity
		wantMsg string
	}{
		{"bad attribute", []Entity{{UID: UID{"Zone", "z"}, Attrs: map[string]any{"n": uint(3)}}}, `entity Zone::"z".attrs.n: unsupported value type uint`},
		{"bad type", []Entity{{UID: UID{"Zone z", "z"}}}, `entity type "Zone z" is not a Cedar name`},
		{"twice", []Entity{{UID: UID{"Zone", "z"}}, {UID: UID{"Zone", "z"}}}, `entity Zone::"z" given twice`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEntities(tt.list)
			if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tt.wantMsg) || e != nil {
				t.Fatalf("NewEntities() = %v, %v; want nil and ErrInvalidRequest containing %q", e, err, tt.wantMsg)
			}
		})
	}
}

func TestDecideCancelled(t *testing.T) {
	s := loadTestdata(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := Request{
		Principal: UID{"Avatar", "av_supervisor"}, Action: UID{"Action", "inspect"}, Resource: UID{"Actuator", "press-1"},
	}
	d, err := s.Decide(ctx, req)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrInvalidRequest) {
		t.Errorf("Decide(cancelled) error = %v, want context.Canceled", err)
	}
	if d.Allow {
		t.Errorf("Decide(cancelled).Allow = true, want false")
	}
	if d, err := s.Decide(context.Background(), req); err != nil || !d.Allow {
		t.Errorf("Decide(live) = %+v, %v; want allow", d, err)
	}
}

func TestZeroSetDenies(t *testing.T) {
	var s Set
	d, err := s.Decide(context.Background(), Request{Principal: UID{"Avatar", "a"}, Action: UID{"Action", "enter"}, Resource: UID{"Scene", "s"}})
	if err != nil || d.Allow || d.Reason != `no policy permits Action::"enter" on Scene` {
		t.Errorf("Set{}.Decide() = %+v, %v; want default deny", d, err)
	}
}

func TestCedarValue(t *testing.T) {
	dec := func(s string) types.Value {
		d, err := types.ParseDecimal(s)
		if err != nil {
			t.Fatalf("ParseDecimal(%q): %v", s, err)
		}
		return d
	}
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   any
		want types.Value
	}{
		{"string", "x", types.String("x")},
		{"bool", true, types.True},
		{"int", 42, types.Long(42)},
		{"int32", int32(-7), types.Long(-7)},
		{"int64 max", int64(math.MaxInt64), types.Long(math.MaxInt64)},
		{"float rounds, not truncates", 0.29, dec("0.29")},
		{"float half rounds away from zero", -1.00005, dec("-1.0001")},
		{"float beyond 4 digits", 3.14159, dec("3.1416")},
		{"float with 13 significant digits", 123456789.1234, dec("123456789.1234")},
		{"uid", UID{"Avatar", "a\"b"}, types.NewEntityUID("Avatar", "a\"b")},
		{"time", when, types.NewDatetime(when)},
		{"duration", 90 * time.Second, types.NewDuration(90 * time.Second)},
		{"strings", []string{"a", "b", "a"}, types.NewSet(types.String("a"), types.String("b"))},
		{"set", []any{1, "x"}, types.NewSet(types.Long(1), types.String("x"))},
		{"record", map[string]any{"k": []any{}}, types.NewRecord(types.RecordMap{"k": types.NewSet()})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cedarValue(tt.in, 0)
			if err != nil {
				t.Fatalf("cedarValue(%#v) error: %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Errorf("cedarValue(%#v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	for _, bad := range []any{922337203685478.0, math.Inf(-1), uint64(1), float32(1), struct{}{}, []int{1}} {
		if got, err := cedarValue(bad, 0); err == nil {
			t.Errorf("cedarValue(%#v) = %s, want error", bad, got)
		}
	}
}

func TestUIDString(t *testing.T) {
	tests := []struct {
		in   UID
		want string
	}{
		{UID{"Avatar", "av_123"}, `Avatar::"av_123"`},
		{UID{"ZeroRealm::Scene", `say "hi"`}, `ZeroRealm::Scene::"say \"hi\""`},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("UID%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}
