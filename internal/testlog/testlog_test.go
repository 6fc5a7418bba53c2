package testlog

import (
	"strings"
	"testing"
)

// recorder is a test whose Log calls are kept.
type recorder struct {
	testing.TB
	lines []string
}

func (r *recorder) Helper()         {}
func (r *recorder) Log(args ...any) { r.lines = append(r.lines, args[0].(string)) }

// TestWarningsReachTheTest: warnings and errors become one line each in
// the test's output, without the handler's newline; info and debug stay
// out.
func TestWarningsReachTheTest(t *testing.T) {
	r := &recorder{TB: t}
	log := New(r)
	log.Debug("debug")
	log.Info("info")
	log.Warn("careful", "n", 1)
	log.Error("broken")
	if len(r.lines) != 2 || !strings.Contains(r.lines[0], "level=WARN msg=careful n=1") || !strings.Contains(r.lines[1], "level=ERROR msg=broken") ||
		strings.HasSuffix(r.lines[0], "\n") {
		t.Fatalf("logged %q, want the warning and the error, one line each", r.lines)
	}
}
