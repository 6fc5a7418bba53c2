package avatar

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zerorealm/zerorealm/internal/webauthntest"
)

// BenchmarkFinishLogin measures sign-in finishes with real ES256
// assertions against an embedded store: parse, consume the ceremony, load
// the avatar, verify the signature, compare-and-set the counter. Ceremonies
// and assertions are made before the timer starts. "concurrent" spreads
// the finishes over several avatars, as a realm's load is.
func BenchmarkFinishLogin(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrent=%d", workers), func(b *testing.B) {
			s := newTestService(b, Config{CeremonyTTL: 30 * time.Minute})
			ctx := context.Background()
			type pending struct {
				id   string
				resp []byte
			}
			per := (b.N + workers - 1) / workers
			work := make([][]pending, workers)
			for w := range workers {
				auth := webauthntest.New()
				name := fmt.Sprintf("bench%d", w)
				register(b, s, auth, name)
				work[w] = make([]pending, per)
				for i := range per {
					work[w][i].id, work[w][i].resp = beginLogin(b, s, auth, name)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for _, p := range work[w] {
						if _, err := s.FinishLogin(ctx, p.id, p.resp); err != nil {
							b.Errorf("FinishLogin: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(per*workers)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}

// BenchmarkP256Verify is the floor under BenchmarkFinishLogin: one raw
// ECDSA P-256 signature check.
func BenchmarkP256Verify(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("authenticator data || client data hash"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("signature does not verify")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
