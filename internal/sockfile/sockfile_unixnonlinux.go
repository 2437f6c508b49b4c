//go:build unix && !linux

package sockfile

import "golang.org/x/sys/unix"

// modeBeforeBind says that bind gives a socket file the mode it gives
// (0777 less the umask), whatever was set on the socket before.
const modeBeforeBind = false

// physicalPath has no name for an open directory here.
func physicalPath(int) (string, bool) { return "", false }

// boundFile cannot tell the file a socket is bound to here.
func boundFile(int) (dev, ino uint64, ok bool) { return 0, 0, false }

// openDirFlags opens a directory to work relative to it.
const openDirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC

// viaFD reports that this system cannot resolve a name through a
// directory fd: bind and connect take the path.
func viaFD(dir int, name string) (string, bool) { return "", false }

// procPath reports that this system has no name for an fd's file.
func procPath(fd int) (string, bool) { return "", false }

// pinFile pins nothing here (a socket file cannot be opened): -1 says so,
// and the file is looked at by name.
func pinFile(dir int, name string) (int, error) { return -1, nil }
