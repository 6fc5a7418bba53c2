package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLevels: each of pion's levels lands at its slog level, warnings at
// the level the factory names, and nothing below the handler's level is
// written.
func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		name    string
		warn    slog.Level
		handler slog.Level
		want    []string
	}{
		{"server", slog.LevelInfo, slog.LevelDebug, []string{"level=DEBUG msg=trace", "level=DEBUG msg=\"debug 2\"", "level=INFO msg=info", "level=INFO msg=\"warn 3\"", "level=ERROR msg=error"}},
		{"client", slog.LevelWarn, slog.LevelInfo, []string{"level=INFO msg=info", "level=WARN msg=\"warn 3\"", "level=ERROR msg=error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.handler, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			l := Factory{Log: log, Warn: tc.warn}.NewLogger("ice")
			l.Trace("trace")
			l.Debugf("debug %d", 2)
			l.Info("info")
			l.Warnf("warn %d", 3)
			l.Error("error")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("logged %q, want %d lines", lines, len(tc.want))
			}
			for i, w := range tc.want {
				if lines[i] != w+" pion=ice" {
					t.Errorf("line %d = %q, want %q", i, lines[i], w+" pion=ice")
				}
			}
		})
	}
}
