package peerbackground

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/zerorealm/zerorealm/biometrics"
	"github.com/zerorealm/zerorealm/internal/store"
)

// Two shares whose populations differ by one person would give that
// person's statistics by subtraction. A node keeps itself from that
// (biometrics.Engine.ShareBackground), but the nodes of one realm may
// each see a person more or less than another for a moment, and a reader
// that reaches two of them would subtract across nodes. So the realm
// keeps the people of its last share in the store, and every node shares
// only those same people or a population that changed by at least k.

// SharesBucket holds the people of the realm's last share, sealed: a
// record written by anyone without the record key reads as absent, and
// nobody can make the realm believe it last shared people it did not.
const SharesBucket = "background-shares"

// lastShareKey is the one record of the bucket.
const lastShareKey = "last"

// members are the people of a share, each as the first 8 bytes of the
// SHA-256 of their avatar id, sorted: enough to count who changed, and
// the ids themselves stay where they are.
type members []uint64

func membersOf(ids []string) members {
	m := make(members, 0, len(ids))
	for _, id := range ids {
		h := sha256.Sum256([]byte(id))
		m = append(m, binary.BigEndian.Uint64(h[:8]))
	}
	slices.Sort(m)
	return slices.Compact(m)
}

func (m members) encode() []byte {
	b := make([]byte, 8*len(m))
	for i, v := range m {
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
	return b
}

func decodeMembers(b []byte) (members, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("peerbackground: the last share's people are %d bytes, not a multiple of 8", len(b))
	}
	m := make(members, len(b)/8)
	for i := range m {
		m[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	if !slices.IsSorted(m) {
		return nil, errors.New("peerbackground: the last share's people are not sorted")
	}
	return m, nil
}

// changed counts the people in exactly one of two sorted lists.
func changed(a, b members) int {
	n, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			n++
			i++
		default:
			n++
			j++
		}
	}
	return n + len(a) - i + len(b) - j
}

// shareAgain reports whether the realm may share people now, given the
// people of its last share, and records them as the last share when they
// changed: ErrTooFewToShare when fewer than k changed since. A record
// written by another node between the read and the write is read again.
func (s *Service) shareAgain(ctx context.Context, people members) error {
	for {
		last, err := s.shares.Get(ctx, lastShareKey)
		if errors.Is(err, store.ErrNotFound) {
			if _, err := s.shares.Create(ctx, lastShareKey, people.encode()); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
		before, err := decodeMembers(last.Value)
		if err != nil {
			return err
		}
		n := changed(before, people)
		switch {
		case n == 0:
			return nil
		case n < s.cfg.MinPeople:
			return fmt.Errorf("%w: %d people changed since this realm's last share, need %d", biometrics.ErrTooFewToShare, n, s.cfg.MinPeople)
		}
		if _, err := s.shares.Update(ctx, lastShareKey, people.encode(), last.Revision); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return err
		}
		return nil
	}
}
