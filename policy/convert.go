package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
)

// maxValueDepth bounds nesting in attribute values: Go maps and slices can
// contain themselves, and converting such a value would never end.
const maxValueDepth = 32

// valueError names where in a request an unconvertible value sits, e.g.
// `context.trust.score: unsupported value type uint8`.
type valueError struct {
	path []string // outermost first
	msg  string
}

func (e *valueError) Error() string {
	var b strings.Builder
	for i, p := range e.path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

func within(segment string, err error) error {
	if ve, ok := err.(*valueError); ok {
		ve.path = slices.Insert(ve.path, 0, segment)
		return ve
	}
	return err
}

// cedarUID checks u is a usable entity reference: a valid Cedar type name
// (Avatar, ZeroRealm::Scene); the id may be any string.
func cedarUID(u UID) (types.EntityUID, error) {
	if u.Type == "" {
		return types.EntityUID{}, &valueError{msg: fmt.Sprintf("entity %s has no type", u)}
	}
	t, err := types.NewEntityType(u.Type)
	if err != nil {
		return types.EntityUID{}, &valueError{msg: fmt.Sprintf("entity type %q is not a Cedar name", u.Type)}
	}
	return types.NewEntityUID(t, types.String(u.ID)), nil
}

// cedarValue is the one place Go values become Cedar values:
//
//	string              String
//	bool                Boolean
//	int, int32, int64   Long
//	float64             decimal, rounded to 4 fractional digits (Cedar's
//	                    precision), within ±922337203685477.5807; a float64
//	                    holds ~15 significant digits, so beyond ~1e11 the
//	                    last fractional digits are approximate. Policies
//	                    compare decimals with methods, not operators:
//	                    principal.trust_score.greaterThanOrEqual(decimal("0.8"))
//	time.Time           datetime (millisecond precision)
//	time.Duration       duration (millisecond precision)
//	UID                 entity reference
//	[]any, []string     Set (unordered, duplicates removed)
//	map[string]any      Record
//	Value               the Cedar value it holds (converted once)
//
// Anything else, nil included, is an error: guessing a representation would
// let a policy silently compare against the wrong thing.
func cedarValue(v any, depth int) (types.Value, error) {
	if depth > maxValueDepth {
		return nil, &valueError{msg: fmt.Sprintf("nested deeper than %d", maxValueDepth)}
	}
	switch x := v.(type) {
	case string:
		return types.String(x), nil
	case bool:
		return types.Boolean(x), nil
	case int:
		return types.Long(x), nil
	case int32:
		return types.Long(x), nil
	case int64:
		return types.Long(x), nil
	case float64:
		return cedarDecimal(x)
	case time.Time:
		return types.NewDatetime(x), nil
	case time.Duration:
		return types.NewDuration(x), nil
	case UID:
		return cedarUID(x)
	case []string:
		vals := make([]types.Value, len(x))
		for i, s := range x {
			vals[i] = types.String(s)
		}
		return types.NewSet(vals...), nil
	case []any:
		vals := make([]types.Value, len(x))
		for i, el := range x {
			cv, err := cedarValue(el, depth+1)
			if err != nil {
				return nil, within(fmt.Sprintf("[%d]", i), err)
			}
			vals[i] = cv
		}
		return types.NewSet(vals...), nil
	case map[string]any:
		return cedarRecord(x, depth+1)
	case Value:
		if x.v == nil {
			return nil, &valueError{msg: "a zero policy.Value (make one with NewValue)"}
		}
		return x.v, nil
	case nil:
		return nil, &valueError{msg: "nil value (Cedar has no null; omit the attribute)"}
	default:
		return nil, &valueError{msg: fmt.Sprintf("unsupported value type %T", v)}
	}
}

// Value is a Go value converted to Cedar once, for a value that many
// requests carry unchanged (an agent's chain, its delegation's limits): a
// request's context or an entity's attributes hold it where the Go value
// would go, and it is not converted again. It encodes to JSON as the Go
// value it was made from.
type Value struct {
	src any
	v   types.Value
}

// NewValue converts v as a request would (see cedarValue).
func NewValue(v any) (Value, error) {
	cv, err := cedarValue(v, 0)
	if err != nil {
		return Value{}, err
	}
	return Value{src: v, v: cv}, nil
}

// Go is the Go value the Value was made from: a caller must not change it.
// A record made by RecordBase.With gives the map of all its members, each
// as it was given (a member may itself be a Value).
func (v Value) Go() any {
	if rs, ok := v.src.(recordSource); ok {
		return rs.asMap()
	}
	return v.src
}

// MarshalJSON encodes the Go value the Value was made from.
func (v Value) MarshalJSON() ([]byte, error) { return json.Marshal(v.src) }

func cedarRecord(m map[string]any, depth int) (types.Record, error) {
	if len(m) == 0 {
		return types.Record{}, nil
	}
	rm := make(types.RecordMap, len(m))
	for k, v := range m {
		cv, err := cedarValue(v, depth)
		if err != nil {
			return types.Record{}, within(k, err)
		}
		rm[types.String(k)] = cv
	}
	return types.NewRecord(rm), nil
}

// cedarDecimal rounds to the nearest ten-thousandth rather than truncating
// as cedar-go's NewDecimalFromFloat does: 0.29 is 0.28999... in binary, and
// truncation would turn a threshold of 0.29 into 0.2899.
func cedarDecimal(f float64) (types.Value, error) {
	units, err := decimalUnits(f)
	if err != nil {
		return nil, err
	}
	d, err := types.NewDecimal(units, -4)
	if err != nil {
		return nil, &valueError{msg: err.Error()}
	}
	return d, nil
}

// decimalUnits is f in the ten-thousandths a Cedar decimal holds.
func decimalUnits(f float64) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &valueError{msg: fmt.Sprintf("%v is not a decimal", f)}
	}
	scaled := math.Round(f * 10_000)
	// 2^63 is exactly representable; int64 holds [-2^63, 2^63).
	if scaled >= 9.223372036854775808e18 || scaled < -9.223372036854775808e18 {
		return 0, &valueError{msg: fmt.Sprintf("%v is out of the decimal range ±922337203685477.5807", f)}
	}
	return int64(scaled), nil
}

// DecimalUnits is the Cedar decimal a float64 becomes in a request, in
// ten-thousandths, and the float64 nearest it, which a request turns into
// the same decimal: two floats with the same units are the same value to
// every policy, and either can stand for the other. ok is false for a
// float no request takes (NaN, infinite, out of range), or whose units
// have no float that comes back to them.
func DecimalUnits(f float64) (units int64, same float64, ok bool) {
	u, err := decimalUnits(f)
	if err != nil {
		return 0, 0, false
	}
	same = float64(u) / 10_000
	if back, err := decimalUnits(same); err != nil || back != u {
		return 0, 0, false
	}
	return u, same, true
}
