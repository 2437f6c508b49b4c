//go:build aix || solaris

package sockfile

import "golang.org/x/sys/unix"

// renameNoReplace renames the file from in fromDir to to in toDir, and
// fails with EEXIST if a file is at to. These systems have neither a rename
// that cannot replace nor linkat: it checks, then renames, and a file that
// appears at to in between is replaced.
func renameNoReplace(fromDir int, from string, toDir int, to string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(toDir, to, &st, unix.AT_SYMLINK_NOFOLLOW); err != unix.ENOENT {
		if err == nil {
			return unix.EEXIST
		}
		return err
	}
	return unix.Renameat(fromDir, from, toDir, to)
}
