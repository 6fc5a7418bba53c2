package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// appended writes its JSON as given; its MarshalJSON is what encoding/json
// would have stored.
type appended string

func (a appended) AppendJSON(b []byte) ([]byte, error) { return append(b, a...), nil }
func (a appended) MarshalJSON() ([]byte, error)        { return []byte(a), nil }

// An event whose signals splice their own JSON is stored as encoding/json
// writes it, byte for byte: the same keys in the same order, the same
// escaping around the spliced value.
func TestMarshalEventIsJSONMarshal(t *testing.T) {
	base := Event{ID: "e1", Time: time.Date(2026, 12, 6, 5, 0, 0, 123, time.UTC), Node: "n1", Index: 3,
		Actor: "av_1", Action: "TransferAsset", Resource: `Asset::"ore/1"`, Outcome: Deny, Reasons: []string{"a <reason> & more"}}
	for name, signals := range map[string]map[string]any{
		"none":        nil,
		"empty":       {},
		"no appender": {"z": 1, "a": "x"},
		"one appender": {"zz": []string{"b", "a"}, "agent": appended(`{"a":[1,2],"b":"\u003cx\u003e"}`), "<k>": "v&w",
			"chain": "av_1 > ag_1 (d1)", "n": 1.5, "m": map[string]any{"q": true}},
		"two appenders": {"x": appended(`1`), "y": appended(`{"z":null}`)},
	} {
		t.Run(name, func(t *testing.T) {
			ev := base
			ev.Signals = signals
			got, err := MarshalEvent(&ev)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(&ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("MarshalEvent = %s\nwant %s", got, want)
			}
		})
	}
}
