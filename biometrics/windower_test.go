package biometrics

import (
	"slices"
	"testing"
	"unsafe"
)

// TestWindowerYieldsNewestSamplesInOrder: the windower keeps one window of
// samples; every window it gives must be the newest size samples, oldest
// first, exactly as a full history would give, and only when one is due.
func TestWindowerYieldsNewestSamplesInOrder(t *testing.T) {
	for _, c := range []struct{ size, hop int }{{100, 50}, {100, 100}, {7, 3}, {8, 1}} {
		w := newWindower(c.size, c.hop)
		var all []uint64
		windows := 0
		for i := range 10 * c.size {
			s := sample{timeUS: uint64(1000 + i)}
			all = append(all, s.timeUS)
			ready := w.add(&s)
			due := len(all) >= c.size && (len(all)-c.size)%c.hop == 0
			if ready != due {
				t.Fatalf("size %d hop %d: after %d samples a window is ready: %v, want %v", c.size, c.hop, len(all), ready, due)
			}
			if !ready {
				continue
			}
			got := w.window(nil)
			windows++
			times := make([]uint64, len(got))
			for k := range got {
				times[k] = got[k].timeUS
			}
			if want := all[len(all)-c.size:]; !slices.Equal(times, want) {
				t.Fatalf("size %d hop %d: window %d is %v, want %v", c.size, c.hop, windows, times, want)
			}
		}
		if windows == 0 {
			t.Fatalf("size %d hop %d: no window", c.size, c.hop)
		}
	}
}

// TestSampleIsPacked: every stream keeps a window of samples (100 at the
// defaults), so the padding of one is paid a hundred times per avatar.
func TestSampleIsPacked(t *testing.T) {
	if n := unsafe.Sizeof(sample{}); n > 128 {
		t.Errorf("a sample takes %d bytes, want at most 128 (order its small fields together)", n)
	}
}
