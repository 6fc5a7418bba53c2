package audit

import (
	"encoding/json"
	"slices"
)

// JSONAppender is a signal value that writes its own JSON: exactly the
// bytes encoding/json would write for it (compact, HTML-escaped), so the
// log can splice them into the event without re-scanning them.
// encoding/json validates and compacts whatever a json.Marshaler returns,
// byte by byte; for a large value encoded from parts made once (an
// agent's context.agent, whose chain is encoded once per chain) that scan
// was most of its cost.
type JSONAppender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// MarshalEvent is the JSON the log stores for ev: json.Marshal(ev), byte
// for byte, with any JSONAppender among the signals spliced in as it
// writes itself.
func MarshalEvent(ev *Event) ([]byte, error) {
	spliced := false
	for _, v := range ev.Signals {
		if _, ok := v.(JSONAppender); ok {
			spliced = true
			break
		}
	}
	if !spliced {
		return json.Marshal(ev)
	}
	// Signals is the event's last field: the event without it, then the
	// signals as encoding/json writes a map (keys sorted, each value
	// encoded on its own).
	head := *ev
	head.Signals = nil
	b, err := json.Marshal(&head)
	if err != nil {
		return nil, err
	}
	b = append(b[:len(b)-1], `,"signals":{`...)
	var stack [16]string
	keys := stack[:0]
	for k := range ev.Signals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendKey(b, k); err != nil {
			return nil, err
		}
		if a, ok := ev.Signals[k].(JSONAppender); ok {
			if b, err = a.AppendJSON(b); err != nil {
				return nil, err
			}
			continue
		}
		vj, err := json.Marshal(ev.Signals[k])
		if err != nil {
			return nil, err
		}
		b = append(b, vj...)
	}
	return append(b, "}}"...), nil
}

// appendKey appends k as encoding/json writes a map key, and the colon: a
// key of plain letters, digits and underscores as it is, any other through
// encoding/json.
func appendKey(b []byte, k string) ([]byte, error) {
	for i := 0; i < len(k); i++ {
		if c := k[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			kj, err := json.Marshal(k)
			return append(append(b, kj...), ':'), err
		}
	}
	b = append(b, '"')
	b = append(b, k...)
	return append(b, '"', ':'), nil
}
