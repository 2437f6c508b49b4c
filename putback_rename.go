//go:build solaris || aix

package anylisten

import "golang.org/x/sys/unix"

// putBack moves the file aside back to base in the directory dfd. Without
// linkat, a file that appeared at base meanwhile would be replaced.
func putBack(dfd int, aside, base string) error {
	return unix.Renameat(dfd, aside, dfd, base)
}
