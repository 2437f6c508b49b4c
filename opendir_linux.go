package anylisten

import "golang.org/x/sys/unix"

// openDirFlags opens a directory only to work relative to it: O_PATH needs
// no read permission on it.
const openDirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
