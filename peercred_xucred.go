//go:build darwin || freebsd || dragonfly

package anylisten

import (
	"fmt"
	"slices"
)

// xucredCredentials makes Credentials of the fields of the BSDs' struct
// xucred (macOS, FreeBSD, DragonFly): cr_groups[0] is the effective group
// and the rest of the cr_ngroups are the supplementary ones.
func xucredCredentials(version, uid uint32, ngroups int16, groups []uint32) (Credentials, error) {
	const xucredVersion = 0 // XUCRED_VERSION
	if version != xucredVersion {
		return Credentials{}, fmt.Errorf("LOCAL_PEERCRED gave a struct xucred of version %d, want %d", version, xucredVersion)
	}
	if ngroups < 1 || int(ngroups) > len(groups) {
		return Credentials{}, fmt.Errorf("LOCAL_PEERCRED gave a struct xucred with %d groups, want 1 to %d", ngroups, len(groups))
	}
	return Credentials{UID: uid, GID: groups[0], Groups: slices.Clone(groups[1:ngroups])}, nil
}
