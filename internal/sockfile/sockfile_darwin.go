package sockfile

import "golang.org/x/sys/unix"

// renameNoReplace renames the file from in fromDir to to in toDir, and
// fails with EEXIST if a file is at to. Where the file system has no
// RENAME_EXCL, it links and unlinks.
func renameNoReplace(fromDir int, from string, toDir int, to string) error {
	err := unix.RenameatxNp(fromDir, from, toDir, to, unix.RENAME_EXCL)
	if err == unix.ENOTSUP || err == unix.EINVAL {
		return linkNoReplace(fromDir, from, toDir, to)
	}
	return err
}
