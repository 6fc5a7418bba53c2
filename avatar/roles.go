package avatar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/zerorealm/zerorealm/internal/store"
)

// Keys of the admins bucket.
const (
	// bootstrapKey names the avatar that the bootstrap made administrator.
	// It is created, never overwritten while its avatar exists, so that of
	// any number of registrations on any number of nodes exactly one wins.
	bootstrapKey = "bootstrap"
	// rosterKey holds the adminRoster, which the last-administrator guard
	// decides on with compare-and-set.
	rosterKey = "roster"
)

// maxListLimit bounds one page of List.
const maxListLimit = 500

// adminRoster records, per avatar, whether it holds the admin role and the
// avatar record revision that decision was taken at.
//
// Role changes write the roster and the avatar record one after the other
// (there is no transaction across two keys), in the order that keeps the
// roster a subset of the real administrators: a removal is written to the
// roster before the record, an addition after it. A crash in between
// leaves an administrator missing from the roster, which only makes the
// guard stricter, never lets it leave the realm without one. The revision
// keeps a delayed addition from undoing a later removal: an entry only
// moves forward in record revisions.
type adminRoster struct {
	Admins map[string]rosterEntry `json:"admins"`
}

type rosterEntry struct {
	Admin bool `json:"admin"`
	// Rev is the avatar record revision: for an addition, the one written
	// with the role; for a removal, the one read before writing without it.
	Rev uint64 `json:"rev"`
}

func (r *adminRoster) holders(except string) int {
	n := 0
	for id, e := range r.Admins {
		if e.Admin && id != except {
			n++
		}
	}
	return n
}

// RoleChange is the outcome of ChangeRoles: the avatar's roles before and
// after.
type RoleChange struct {
	Before, After []string
}

// NormalizeRoles checks each role (1 to 64 of a-z, 0-9, '_', '-', '.',
// ':'; at most 32 roles) and drops duplicates, keeping the first order
// seen. It is what SetRoles stores, so a caller that binds a step-up to a
// role change binds it to this form.
func NormalizeRoles(roles []string) ([]string, error) { return normalizeRoles(roles) }

// ChangeRoles replaces the avatar's roles, as SetRoles does, and refuses
// with ErrLastAdmin to take the admin role from the last avatar known to
// hold it, so a realm that has an administrator keeps one. It is what the
// realm's role API calls.
func (s *Service) ChangeRoles(ctx context.Context, avatarID string, roles []string) (RoleChange, error) {
	return s.setRoles(ctx, avatarID, roles, true)
}

// CheckRoleChange tells, changing nothing, whether ChangeRoles would
// refuse roles for the avatar as things stand: roles that are not valid,
// an avatar that does not exist, or ErrLastAdmin. A caller that spends a
// one-time proof (a step-up) on the change asks first, so that a change
// refused for a reason known beforehand does not spend it. ChangeRoles
// still decides: another change may come in between.
func (s *Service) CheckRoleChange(ctx context.Context, avatarID string, roles []string) error {
	roles, err := normalizeRoles(roles)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rec, _, err := s.load(ctx, avatarID)
	if err != nil {
		return err
	}
	admin := s.cfg.AdminRole
	if !slices.Contains(rec.Roles, admin) || slices.Contains(roles, admin) {
		return nil
	}
	roster, _, err := s.readRoster(ctx)
	if err != nil {
		return err
	}
	if roster.holders(avatarID) == 0 {
		return fmt.Errorf("%w: avatar %s is the only administrator", ErrLastAdmin, avatarID)
	}
	return nil
}

// SetRoles replaces the avatar's roles. Roles are 1 to 64 of a-z, 0-9,
// '_', '-', '.', ':'; duplicates are dropped; an empty list is allowed.
// Unlike ChangeRoles it may take the admin role from the last
// administrator: it is for tooling that runs beside the realm, and tests.
func (s *Service) SetRoles(ctx context.Context, avatarID string, roles []string) error {
	_, err := s.setRoles(ctx, avatarID, roles, false)
	return err
}

func (s *Service) setRoles(ctx context.Context, avatarID string, roles []string, guard bool) (RoleChange, error) {
	roles, err := normalizeRoles(roles)
	if err != nil {
		return RoleChange{}, err
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	admin := s.cfg.AdminRole
	for range maxCASAttempts {
		rec, rev, err := s.load(ctx, avatarID)
		if err != nil {
			return RoleChange{}, err
		}
		before := slices.Clone(rec.Roles)
		if slices.Contains(before, admin) && !slices.Contains(roles, admin) {
			if err := s.rosterSet(ctx, avatarID, rosterEntry{Admin: false, Rev: rev}, guard); err != nil {
				return RoleChange{}, err
			}
		}
		rec.Roles = slices.Clone(roles)
		data, err := json.Marshal(rec)
		if err != nil {
			return RoleChange{}, fmt.Errorf("avatar: encode %s: %w", avatarID, err)
		}
		newRev, err := s.avatars.Update(ctx, avatarID, data, rev)
		s.reads.forget(avatarID) // also when the outcome is unknown
		if errors.Is(err, store.ErrConflict) {
			continue // a sign-in or another change wrote meanwhile: decide again
		}
		if err != nil {
			return RoleChange{}, fmt.Errorf("avatar: update %s: %w", avatarID, err)
		}
		s.recent.put(avatarID, data, newRev)
		if slices.Contains(roles, admin) {
			// Also when the role was already held: it repairs an entry a
			// crash left out.
			if err := s.rosterSet(ctx, avatarID, rosterEntry{Admin: true, Rev: newRev}, false); err != nil {
				s.log.Warn("roles changed but the admin roster was not updated; the last-admin guard counts this admin once it is", "avatar", avatarID, "err", err)
			}
		}
		s.log.Info("roles changed", "avatar", avatarID, "before", before, "after", roles)
		return RoleChange{Before: before, After: slices.Clone(roles)}, nil
	}
	return RoleChange{}, fmt.Errorf("avatar: roles of %s: %w after %d attempts", avatarID, store.ErrConflict, maxCASAttempts)
}

// readRoster reads the admin roster and its revision (0 and an empty
// roster when it was never written).
func (s *Service) readRoster(ctx context.Context) (adminRoster, uint64, error) {
	roster := adminRoster{Admins: map[string]rosterEntry{}}
	e, err := s.admins.Get(ctx, rosterKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return roster, 0, nil
	case err != nil:
		return roster, 0, fmt.Errorf("avatar: admin roster: %w", err)
	}
	if err := json.Unmarshal(e.Value, &roster); err != nil {
		return roster, 0, fmt.Errorf("avatar: admin roster is corrupt: %w", err)
	}
	if roster.Admins == nil {
		roster.Admins = map[string]rosterEntry{}
	}
	return roster, e.Revision, nil
}

// rosterSet writes avatarID's entry in the admin roster with
// compare-and-set, unless the roster already holds a decision taken at a
// later record revision. With guard, it refuses (ErrLastAdmin) a removal
// that would leave the roster with no administrator.
func (s *Service) rosterSet(ctx context.Context, avatarID string, want rosterEntry, guard bool) error {
	for range maxCASAttempts {
		roster, rev, err := s.readRoster(ctx)
		if err != nil {
			return err
		}
		have, known := roster.Admins[avatarID]
		// An addition is stale unless taken after everything recorded; a
		// removal decided at the revision an addition wrote comes after it.
		if known && (want.Rev < have.Rev || want.Admin && want.Rev == have.Rev) {
			return nil
		}
		if !want.Admin && guard && roster.holders(avatarID) == 0 {
			return fmt.Errorf("%w: avatar %s is the only administrator", ErrLastAdmin, avatarID)
		}
		if known && have.Admin == want.Admin && !want.Admin {
			return nil
		}
		roster.Admins[avatarID] = want
		data, err := json.Marshal(&roster)
		if err != nil {
			return fmt.Errorf("avatar: encode admin roster: %w", err)
		}
		if rev == 0 {
			_, err = s.admins.Create(ctx, rosterKey, data)
		} else {
			_, err = s.admins.Update(ctx, rosterKey, data, rev)
		}
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("avatar: admin roster: %w", err)
		}
		return nil
	}
	return fmt.Errorf("avatar: admin roster: %w after %d attempts", store.ErrConflict, maxCASAttempts)
}

// claimBootstrap decides whether the avatar being created becomes the
// realm's administrator: it does if it creates the bootstrap key, or takes
// it over from a registration that claimed it and never stored its avatar
// (see claim). It returns the key's revision, 0 when another avatar holds
// it.
func (s *Service) claimBootstrap(ctx context.Context, avatarID string) (uint64, error) {
	rev, err := s.claim(ctx, s.admins, bootstrapKey, avatarID, func(*avatarRecord) bool { return true })
	if errors.Is(err, store.ErrConflict) {
		// Once the promoted avatar exists it stays, so this node can stop
		// asking; while its registration is in flight, keep asking.
		if id, err := s.Bootstrapped(ctx); err == nil && id != "" {
			s.bootstrapDone.Store(true)
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("avatar: bootstrap administrator: %w", err)
	}
	return rev, nil
}

// Bootstrapped returns the id of the avatar the bootstrap made
// administrator, or "" when it has made none (yet, or because it is off).
func (s *Service) Bootstrapped(ctx context.Context) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	e, err := s.admins.Get(ctx, bootstrapKey)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("avatar: bootstrap administrator: %w", err)
	}
	id := string(e.Value)
	if _, _, err := s.load(ctx, id); errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidInput) {
		return "", nil // claimed by a registration that has not (or never) finished
	} else if err != nil {
		return "", err
	}
	return id, nil
}

// List returns up to limit avatars ordered by name, starting after the
// name after ("" for the first page), and the name to pass as after for
// the next page ("" when this was the last). It reads every name to order
// them, so a page costs one key listing plus a read per avatar.
func (s *Service) List(ctx context.Context, after string, limit int) ([]*Avatar, string, error) {
	if limit < 1 || limit > maxListLimit {
		return nil, "", invalidf("limit %d, want 1 to %d", limit, maxListLimit)
	}
	if after != "" {
		if err := ValidateName(after); err != nil {
			return nil, "", err
		}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	names, err := s.names.Keys(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("avatar: list: %w", err)
	}
	sort.Strings(names)
	i, _ := slices.BinarySearch(names, after)
	if i < len(names) && names[i] == after {
		i++
	}
	var out []*Avatar
	for ; i < len(names) && len(out) < limit; i++ {
		rec, err := s.byName(ctx, names[i])
		if errors.Is(err, ErrNotFound) {
			continue // a registration in flight or abandoned
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, rec.Avatar.clone())
	}
	next := ""
	if i < len(names) && len(out) > 0 {
		next = out[len(out)-1].Name
	}
	return out, next, nil
}
