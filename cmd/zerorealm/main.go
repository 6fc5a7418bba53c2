package main

import (
	"errors"
	"fmt"
	"os"
)

// exitUsage is the status for a mistake in flags, environment or config:
// the operator must change something before trying again.
const exitUsage = 2

// usageError marks an error as the operator's to fix (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := newRootCommand()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "zerorealm: "+err.Error())
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return 1
}
