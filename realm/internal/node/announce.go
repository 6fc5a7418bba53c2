package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zerorealm/zerorealm/twin"
)

// Grant key announcements: after the node's grant key changed (a ring
// rotation, or an old grant key imported as retired), the key gateways
// pinned announces the new one on twin.KeySubject (a twin.KeyRotation it
// signs), so enrolled gateways follow without new credentials. Core NATS
// keeps no message, so the announcement repeats for a window; a gateway
// offline for all of it needs its credentials issued again. The file
// grantAnnouncedFile remembers the key announced to the end of a window,
// so later starts do not announce it again (each announcement extends the
// old key's grace at the gateways).
const (
	grantAnnounceEvery  = 2 * time.Second
	grantAnnounceWindow = 10 * time.Minute
	grantAnnouncedFile  = "grant-key-announced"
)

// GrantKeyAnnouncer returns the loop that announces next, the grant key
// the node signs with now, to the gateways that pinned an older one, or
// nil when there is nothing to announce. publish sends one signed
// rotation on twin.KeySubject.
func (k *Keys) GrantKeyAnnouncer(next common.Address, publish func([]byte) error, log *slog.Logger) func(context.Context) {
	var from []*twin.Signer
	if k.Legacy != nil {
		from = append(from, k.Legacy)
	}
	marker := filepath.Join(k.dataDir, "keys", grantAnnouncedFile)
	done, _ := os.ReadFile(marker)
	if k.Previous != nil && strings.TrimSpace(string(done)) != next.Hex() {
		if s, err := twin.NewSigner(k.Previous); err == nil {
			from = append(from, s)
		}
	}
	if len(from) == 0 {
		return nil
	}
	return func(ctx context.Context) {
		t := time.NewTicker(grantAnnounceEvery)
		defer t.Stop()
		end := time.Now().Add(grantAnnounceWindow)
		for {
			for _, s := range from {
				sr := s.SignRotation(next, time.Now())
				if err := publish(sr.Encode()); err != nil {
					log.Warn("announce the grant key to gateways", "previous", s.Address().Hex(), "next", next.Hex(), "err", err)
				}
			}
			if time.Now().After(end) {
				if err := os.WriteFile(marker, []byte(next.Hex()+"\n"), 0o600); err != nil {
					log.Warn("remember the announced grant key", "err", err)
				}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
}
