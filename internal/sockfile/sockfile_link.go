//go:build unix && !(aix || solaris)

package sockfile

import "golang.org/x/sys/unix"

// linkNoReplace moves the file from in fromDir to to in toDir as link and
// unlink: link fails with EEXIST rather than replace a file at to. For a
// moment the file has both names.
func linkNoReplace(fromDir int, from string, toDir int, to string) error {
	if err := unix.Linkat(fromDir, from, toDir, to, 0); err != nil {
		return err
	}
	return unix.Unlinkat(fromDir, from, 0)
}
