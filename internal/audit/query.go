package audit

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a query.
const (
	DefaultLimit = 100  // events per page when not told
	MaxLimit     = 1000 // events per page at most
	maxActions   = 32   // actions one query may ask for
	maxValueLen  = 512  // bytes of an actor or resource
)

// Query filters a View. Every filter that is set must hold; the zero Query
// matches every event.
type Query struct {
	Node     string    // only this node's events, if set
	Actor    string    // only this actor's, if set
	Actions  []string  // only these actions, if any
	Resource string    // only decisions on this resource, if set
	Outcome  Outcome   // only allows or denies, if set
	Since    time.Time // only events at or after this time, if set
	Until    time.Time // only events before this time, if set
	Before   Cursor    // only events stored before this place, if set (the next page)
	Limit    int       // at most this many, newest first; default DefaultLimit, at most MaxLimit
}

// eventHead is the part of an event a query looks at, so that filtering
// skips decoding reasons, policies and signals of events it drops.
type eventHead struct {
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Actor    string    `json:"actor"`
	Action   string    `json:"action"`
	Resource string    `json:"resource"`
	Outcome  Outcome   `json:"outcome"`
}

func (q *Query) matches(e *eventHead) bool {
	return (q.Node == "" || e.Node == q.Node) &&
		(q.Actor == "" || e.Actor == q.Actor) &&
		(len(q.Actions) == 0 || slices.Contains(q.Actions, e.Action)) &&
		(q.Resource == "" || e.Resource == q.Resource) &&
		(q.Outcome == "" || e.Outcome == q.Outcome) &&
		(q.Since.IsZero() || !e.Time.Before(q.Since)) &&
		(q.Until.IsZero() || e.Time.Before(q.Until))
}

// Cursor is an event's place in the AUDIT stream: the sequence of the block
// that holds it and the event's line in that block (from 0). The stream is
// shared, so a cursor means the same on every realm node, and new events
// only come after it, so a page boundary stays put while they arrive. Its
// text form is "<seq>:<line>", e.g. "1042:3".
type Cursor struct {
	Seq  uint64
	Line uint32
}

// IsZero reports whether c names no place (no paging).
func (c Cursor) IsZero() bool { return c == Cursor{} }

// Less reports whether c was stored before d.
func (c Cursor) Less(d Cursor) bool {
	return c.Seq < d.Seq || (c.Seq == d.Seq && c.Line < d.Line)
}

// String is the cursor's text form; "" for the zero cursor.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.FormatUint(c.Seq, 10) + ":" + strconv.FormatUint(uint64(c.Line), 10)
}

// ParseCursor reads a cursor's text form. Only the canonical form is
// accepted (no sign, no leading zeros), so that a cursor has one spelling.
func ParseCursor(s string) (Cursor, error) {
	seqText, lineText, ok := strings.Cut(s, ":")
	if !ok {
		return Cursor{}, fmt.Errorf("must be a cursor \"<seq>:<line>\" as given in next")
	}
	seq, err1 := strconv.ParseUint(seqText, 10, 64)
	line, err2 := strconv.ParseUint(lineText, 10, 32)
	c := Cursor{Seq: seq, Line: uint32(line)}
	if err1 != nil || err2 != nil || seq == 0 || c.String() != s {
		return Cursor{}, fmt.Errorf("must be a cursor \"<seq>:<line>\" as given in next")
	}
	return c, nil
}

// ParamError is a query parameter that cannot be used, named so that the
// client knows which one to fix.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string {
	return "query parameter " + strconv.Quote(e.Param) + " " + e.Reason
}

// actionPattern is what an action is: a policy action name such as
// "CommandActuator".
var actionPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// queryParams are the parameters ParseQuery knows. "outcome" is the older
// name of "decision" and stays for existing clients.
var queryParams = []string{"action", "actor", "before", "decision", "limit", "node", "outcome", "resource", "since", "until"}

// QueryParams are the names of the parameters ParseQuery knows, sorted.
func QueryParams() []string { return slices.Clone(queryParams) }

// ParseQuery reads a query from URL parameters: action (repeatable, or a
// comma-separated list), decision (allow or deny; outcome is a synonym),
// actor, resource, node, since and until (RFC 3339), before (a cursor from
// a previous page's next) and limit (1..MaxLimit). An unknown parameter, a
// repeated single-valued one or a bad value is a *ParamError, so that a
// misspelt filter is refused rather than silently ignored.
func ParseQuery(values url.Values) (Query, error) {
	var q Query
	for _, name := range slices.Sorted(maps.Keys(values)) {
		if !slices.Contains(queryParams, name) {
			return Query{}, &ParamError{Param: name, Reason: "is not known; use " + strings.Join(queryParams, ", ")}
		}
		if name != "action" && len(values[name]) > 1 {
			return Query{}, &ParamError{Param: name, Reason: "is given more than once"}
		}
	}
	one := func(name string) (string, bool, error) {
		vs, ok := values[name]
		if !ok {
			return "", false, nil
		}
		if vs[0] == "" {
			return "", false, &ParamError{Param: name, Reason: "is empty; leave it out to not filter by it"}
		}
		return vs[0], true, nil
	}

	for _, v := range values["action"] {
		for a := range strings.SplitSeq(v, ",") {
			if !actionPattern.MatchString(a) {
				return Query{}, &ParamError{Param: "action", Reason: fmt.Sprintf("has %q, want action names such as CommandActuator (letters, digits, _ . -; at most 64), repeated or comma-separated", a)}
			}
			if !slices.Contains(q.Actions, a) {
				q.Actions = append(q.Actions, a)
			}
		}
	}
	if len(q.Actions) > maxActions {
		return Query{}, &ParamError{Param: "action", Reason: fmt.Sprintf("names %d actions, at most %d", len(q.Actions), maxActions)}
	}
	for _, name := range []string{"decision", "outcome"} {
		v, ok, err := one(name)
		if err != nil {
			return Query{}, err
		}
		if !ok {
			continue
		}
		if v != string(Allow) && v != string(Deny) {
			return Query{}, &ParamError{Param: name, Reason: "must be allow or deny"}
		}
		if q.Outcome != "" && string(q.Outcome) != v {
			return Query{}, &ParamError{Param: name, Reason: "contradicts decision (outcome is its older name)"}
		}
		q.Outcome = Outcome(v)
	}
	if v, ok, err := one("node"); err != nil {
		return Query{}, err
	} else if ok {
		if !nodePattern.MatchString(v) {
			return Query{}, &ParamError{Param: "node", Reason: "must be a node name: letters, digits, _ and -, at most 64"}
		}
		q.Node = v
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"actor", &q.Actor}, {"resource", &q.Resource}} {
		v, ok, err := one(f.name)
		if err != nil {
			return Query{}, err
		}
		if !ok {
			continue
		}
		if len(v) > maxValueLen || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return Query{}, &ParamError{Param: f.name, Reason: fmt.Sprintf("must be text without control characters, at most %d bytes", maxValueLen)}
		}
		*f.to = v
	}
	for _, f := range []struct {
		name string
		to   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v, ok, err := one(f.name)
		if err != nil {
			return Query{}, err
		}
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || t.IsZero() {
			return Query{}, &ParamError{Param: f.name, Reason: "must be an RFC 3339 time such as 2026-11-26T04:30:00Z"}
		}
		*f.to = t
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return Query{}, &ParamError{Param: "until", Reason: "must be after since"}
	}
	if v, ok, err := one("before"); err != nil {
		return Query{}, err
	} else if ok {
		c, err := ParseCursor(v)
		if err != nil {
			return Query{}, &ParamError{Param: "before", Reason: err.Error()}
		}
		q.Before = c
	}
	if v, ok, err := one("limit"); err != nil {
		return Query{}, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit || strconv.Itoa(n) != v {
			return Query{}, &ParamError{Param: "limit", Reason: fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)}
		}
		q.Limit = n
	}
	return q, nil
}

// Values is the query as URL parameters, the inverse of ParseQuery.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(name, value string) {
		if value != "" {
			v.Set(name, value)
		}
	}
	if len(q.Actions) > 0 {
		v.Set("action", strings.Join(q.Actions, ","))
	}
	set("decision", string(q.Outcome))
	set("node", q.Node)
	set("actor", q.Actor)
	set("resource", q.Resource)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	set("before", q.Before.String())
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}
