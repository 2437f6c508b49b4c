//go:build unix && !linux

package anylisten

import "golang.org/x/sys/unix"

// openDirFlags opens a directory to work relative to it.
const openDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
