//go:build unix

package dirlock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FileName is the lock file kept in a locked directory. It stays after the
// holder stops: the lock is the flock on it, not its existence, so a crash
// never leaves a stale lock behind.
const FileName = "zerorealm.lock"

// ErrHeld is matched by the error Acquire returns when another process holds
// the directory.
var ErrHeld = errors.New("dirlock: directory in use")

// HeldError names the directory and the process that holds it.
type HeldError struct {
	Dir string
	// PID is the holder's process id as it recorded it; 0 when it had not
	// written it yet or the file does not say.
	PID int
}

func (e *HeldError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("%s is in use by %s (lock file %s)", e.Dir, holder, filepath.Join(e.Dir, FileName))
}

// Is lets errors.Is(err, ErrHeld) match.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held directory lock.
type Lock struct {
	f *os.File
}

// Acquire locks dir (which must exist) without waiting. When another process
// holds it, the error is a *HeldError naming that process. The lock lasts
// until Release or the end of the process, whichever comes first.
func Acquire(dir string) (*Lock, error) {
	name := filepath.Join(dir, FileName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dirlock: open %s: %w", name, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{Dir: dir, PID: readPID(f)}
		}
		return nil, fmt.Errorf("dirlock: lock %s: %w", name, err)
	}
	// Only the holder writes, so a reader sees either the old holder's pid
	// (which it can no longer be refused by) or this one.
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("dirlock: record pid in %s: %w", name, err)
		}
	}
	return &Lock{f: f}, nil
}

// Release unlocks the directory. It is safe to call on a nil Lock and more
// than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Clear the pid first so that nobody is later named as the holder;
	// closing the file drops the flock.
	_ = f.Truncate(0)
	return f.Close()
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func readPID(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
