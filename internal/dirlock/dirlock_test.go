package dirlock

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSecondAcquireNamesTheHolderUntilReleased(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file description, so a second open in
	// this process is refused exactly as another process would be.
	_, err = Acquire(dir)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second Acquire = %v, want a *HeldError", err)
	}
	if held.PID != os.Getpid() || held.Dir != dir {
		t.Fatalf("held = %+v, want pid %d and dir %s", held, os.Getpid(), dir)
	}
	if msg := err.Error(); !strings.Contains(msg, "process "+strconv.Itoa(os.Getpid())) || !strings.Contains(msg, dir) {
		t.Fatalf("message %q does not name the process and the directory", msg)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("second Release = %v, want nil", err)
	}
	again, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release = %v", err)
	}
	again.Release()
}

func TestAcquireOnMissingDirectoryFails(t *testing.T) {
	if _, err := Acquire(t.TempDir() + "/missing"); err == nil || errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire on a missing directory = %v, want an open error", err)
	}
}
