package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

var benchSizes = []int{128, 1024}

func newBenchStream(b *testing.B) *Stream {
	b.Helper()
	srv := natstest.RunServer(b)
	s := newTestStore(b, natstest.Connect(b, srv.ClientURL()), Config{})
	return newTestStream(b, s, StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}})
}

func BenchmarkAppendIfLast(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		data := make([]byte, size)
		b.Run(fmt.Sprintf("sequential/%dB", size), func(b *testing.B) {
			st := newBenchStream(b)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			var last uint64
			for b.Loop() {
				seq, err := st.AppendIfLast(ctx, "bench.chain", data, last)
				if err != nil {
					b.Fatalf("AppendIfLast: %v", err)
				}
				last = seq
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run(fmt.Sprintf("concurrent16/%dB", size), func(b *testing.B) {
			const writers = 16
			st := newBenchStream(b)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := (b.N + writers - 1) / writers
			for w := range writers {
				wg.Go(func() {
					subject := fmt.Sprintf("bench.chain%d", w)
					var last uint64
					for range per {
						seq, err := st.AppendIfLast(ctx, subject, data, last)
						if err != nil {
							b.Errorf("AppendIfLast(%s): %v", subject, err)
							return
						}
						last = seq
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

func BenchmarkBucketUpdate(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			srv := natstest.RunServer(b)
			s := newTestStore(b, natstest.Connect(b, srv.ClientURL()), Config{})
			bucket, err := s.Bucket(ctx, BucketConfig{Name: "bench"})
			if err != nil {
				b.Fatalf("Bucket: %v", err)
			}
			value := make([]byte, size)
			rev, err := bucket.Create(ctx, "k", value)
			if err != nil {
				b.Fatalf("Create: %v", err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				rev, err = bucket.Update(ctx, "k", value, rev)
				if err != nil {
					b.Fatalf("Update: %v", err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

func BenchmarkGetLast(b *testing.B) {
	ctx := context.Background()
	for _, subjects := range []int{1, 10000} {
		b.Run(fmt.Sprintf("subjects=%d", subjects), func(b *testing.B) {
			st := newBenchStream(b)
			data := make([]byte, 256)
			for i := range subjects {
				if _, err := st.Append(ctx, fmt.Sprintf("bench.s%d", i), data); err != nil {
					b.Fatalf("Append: %v", err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, err := st.GetLast(ctx, fmt.Sprintf("bench.s%d", i%subjects)); err != nil {
					b.Fatalf("GetLast: %v", err)
				}
				i++
			}
		})
	}
}

// BenchmarkSealedGet compares a bucket read with and without sealing: the
// difference is the cost of verifying the value's tag.
func BenchmarkSealedGet(b *testing.B) {
	ctx := context.Background()
	for _, sealed := range []bool{false, true} {
		b.Run(fmt.Sprintf("sealed=%v", sealed), func(b *testing.B) {
			srv := natstest.RunServer(b)
			s := newTestStore(b, natstest.Connect(b, srv.ClientURL()), Config{RecordKey: bytes.Repeat([]byte{1}, RecordKeySize)})
			bucket, err := s.Bucket(ctx, BucketConfig{Name: "bench", Sealed: sealed})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bucket.Put(ctx, "key", make([]byte, 512)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bucket.Get(ctx, "key"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSeal is the sealing alone: sealing and opening a 512-byte value
// and a message.
func BenchmarkSeal(b *testing.B) {
	s, err := newSealer(bytes.Repeat([]byte{1}, RecordKeySize), nil)
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 512)
	b.Run("value", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			now := time.Now()
			if _, reason := s.openValue("sessions", "abc", s.sealValue("sessions", "abc", value, now), now, time.Minute); reason != "" {
				b.Fatal(reason)
			}
		}
	})
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, reason := s.openMsg("LEDGER", "ledger.a.b", "id", s.sealMsg("LEDGER", "ledger.a.b", "id", "42", value), value); reason != "" {
				b.Fatal(reason)
			}
		}
	})
}
