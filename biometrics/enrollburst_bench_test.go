package biometrics_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/biometrics"
)

// BenchmarkEnrollmentBurst is a classroom putting on headsets: n avatars
// finish enrolling in the same instant on one node, and each does what the
// realm does with a finished enrollment: the stream gives the engine its
// template, hands a copy back, and the copy is sealed and stored while
// the node's change feed reads every written template back into the
// population (the realm's followTemplates). It reports the heap's rise at
// its peak over the live heap before the burst, per enrollment, and the
// bytes allocated per enrollment (go test -run '^$' -bench
// EnrollmentBurst -benchtime 1x ./biometrics). The collector's target is
// a tenth over the live heap during the burst, as under a memory limit
// close to it (serve --memory-limit), so that the peak is what the burst
// holds at once rather than what the collector let pile up.
func BenchmarkEnrollmentBurst(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprintf("avatars=%d", n), func(b *testing.B) {
			for range b.N {
				peak, allocs := enrollmentBurst(b, n)
				b.ReportMetric(float64(peak)/float64(n), "peak-B/enrollment")
				b.ReportMetric(float64(allocs)/float64(n), "alloc-B/enrollment")
			}
		})
	}
}

func enrollmentBurst(b *testing.B, n int) (peak, allocs uint64) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStore(b)
	ts, err := biometrics.NewTemplateStore(ctx, st, testKey(1))
	if err != nil {
		b.Fatal(err)
	}
	e, err := biometrics.NewEngine(biometrics.Config{})
	if err != nil {
		b.Fatal(err)
	}
	// Each person's template in arrays of its own, as enrollment makes them.
	plain, err := enrolledTemplate(b, 7).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	tmpls := make([]*biometrics.Template, n)
	for i := range tmpls {
		tmpls[i] = new(biometrics.Template)
		if err := tmpls[i].UnmarshalBinary(plain); err != nil {
			b.Fatal(err)
		}
		tmpls[i].Mean[0] += float64(i) * 1e-3
	}
	changes, err := ts.Changes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var applied atomic.Int64
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		for c := range changes {
			if c.Own {
				// The realm's followTemplates: what this node wrote, its
				// stream has already given the engine.
				applied.Add(1)
				continue
			}
			if t, err := ts.Get(ctx, c.AvatarID); err == nil {
				e.SetTemplate(c.AvatarID, t)
				applied.Add(1)
			}
		}
	}()

	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(samples)
	base, allocBase := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	var high atomic.Uint64
	sampled := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(sampled)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > high.Load() {
				high.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()

	b.StartTimer()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("avatar-%d", i)
			e.SetTemplate(id, tmpls[i])
			if err := ts.Put(ctx, id, tmpls[i]); err != nil {
				b.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	for applied.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	close(stop)
	<-sampled
	metrics.Read(samples)
	allocs = samples[1].Value.Uint64() - allocBase
	cancel()
	<-followed
	if h := high.Load(); h > base {
		peak = h - base
	}
	return peak, allocs
}
