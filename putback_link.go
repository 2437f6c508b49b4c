//go:build unix && !solaris && !aix

package anylisten

import "golang.org/x/sys/unix"

// putBack moves the file aside back to base in the directory dfd without
// replacing a file that appeared there meanwhile: link fails rather than
// replace. A directory cannot be linked; it is renamed back.
func putBack(dfd int, aside, base string) error {
	if err := unix.Linkat(dfd, aside, dfd, base, 0); err != nil {
		if err == unix.EEXIST {
			return err
		}
		return unix.Renameat(dfd, aside, dfd, base)
	}
	return unix.Unlinkat(dfd, aside, 0)
}
