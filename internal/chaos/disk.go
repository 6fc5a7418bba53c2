package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// FillDisk is the fault of writing a file in dir until its file system
// is full, and removing it at the heal.
func FillDisk(dir string, hold time.Duration) Fault {
	filler := filepath.Join(dir, "chaos-filler")
	return Fault{Name: "full disk under the embedded store", Hold: hold,
		Inject: func(context.Context) error { return fill(filler) },
		Heal:   func(context.Context) error { return os.Remove(filler) },
	}
}

// fill writes path until the file system refuses with ENOSPC.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	for {
		if _, err := f.Write(block); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("chaos: fill the disk: %w", err)
		}
	}
}
