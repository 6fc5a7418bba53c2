package synth

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkNext is one frame of a synthetic person at 72 Hz: with one
// integration step a frame, as the load tool moves its avatars, and with
// the default steps, as the evaluation does.
func BenchmarkNext(b *testing.B) {
	for _, c := range []struct {
		name    string
		maxStep time.Duration
	}{{"OneStep", time.Second / 72}, {"Default", 0}} {
		b.Run(c.name, func(b *testing.B) {
			gens := make([]*Generator, 16)
			for i := range gens {
				gens[i] = NewPerson(int64(i + 1)).Session(0)
				if c.maxStep > 0 {
					gens[i].SetMaxStep(c.maxStep)
				}
			}
			b.ReportAllocs()
			i := 0
			cpu0 := processCPU(b)
			for b.Loop() {
				f := gens[i%len(gens)].Next(time.Second / 72)
				if !f.Head.Tracked {
					b.Fatal("head not tracked")
				}
				i++
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time of the process so far: what a benchmark
// costs, apart from the other work of a shared machine that stretches its
// wall time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
