package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zerorealm/zerorealm/internal/natstest"
)

func BenchmarkParseToken(b *testing.B) {
	token, _, _ := newToken()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := parseToken(token); !ok {
			b.Fatal("parseToken refused a fresh token")
		}
	}
}

// BenchmarkAuthenticate measures the hot path: a live session used again
// within TouchEvery, so one read and no write.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	for _, sessions := range []int{1, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			clock := newFakeClock() // frozen: never due for a touch
			m, _ := newTestManager(b, Config{Now: clock.Now})
			tokens := make([]string, sessions)
			for i := range tokens {
				tokens[i], _ = mustCreate(b, m, fmt.Sprintf("av_%d", i%100))
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if _, err := m.Authenticate(ctx, tokens[i%sessions]); err != nil {
					b.Fatalf("Authenticate: %v", err)
				}
				i++
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		clock := newFakeClock()
		m, _ := newTestManager(b, Config{Now: clock.Now})
		token, _ := mustCreate(b, m, "av_1")
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := m.Authenticate(ctx, token); err != nil {
					b.Errorf("Authenticate: %v", err)
					return
				}
			}
		})
	})
	b.Run("malformed", func(b *testing.B) {
		m, _ := newTestManager(b, Config{})
		token, _ := mustCreate(b, m, "av_1")
		bad := token[:TokenLen-1] + "*"
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := m.Authenticate(ctx, bad); !errors.Is(err, ErrInvalidSession) {
				b.Fatalf("Authenticate(malformed) error = %v", err)
			}
		}
	})
}

// BenchmarkRevocationPropagation measures, per revocation, the time from
// calling Revoke on one node to the other node's Revocations channel
// delivering it, and reports its percentiles. Run it with e.g.
// -benchtime=200x for 200 revocations.
func BenchmarkRevocationPropagation(b *testing.B) {
	b.Run("single-node", func(b *testing.B) {
		srv := natstest.RunServer(b)
		benchPropagation(b, srv, srv)
	})
	b.Run("cluster3", func(b *testing.B) {
		servers := natstest.RunCluster(b, 3)
		benchPropagation(b, servers[0], servers[1])
	})
}

func benchPropagation(b *testing.B, revoker, watcher *server.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newManagerOn(b, natstest.Connect(b, revoker.ClientURL()), Config{})
	w := newManagerOn(b, natstest.Connect(b, watcher.ClientURL()), Config{})
	ch, err := w.Revocations(ctx)
	if err != nil {
		b.Fatalf("Revocations: %v", err)
	}
	latencies := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_, s := mustCreate(b, a, fmt.Sprintf("av_%d", i%50))
		b.StartTimer()

		start := time.Now()
		if err := a.Revoke(ctx, s.ID, "bench"); err != nil {
			b.Fatalf("Revoke: %v", err)
		}
		for {
			r := receive(b, ch)
			if r.SessionID == s.ID {
				break
			}
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	ms := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}
