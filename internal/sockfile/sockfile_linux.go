package sockfile

import (
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// modeBeforeBind says that bind gives a socket file the mode of the
// socket's own inode (less the umask), which fchmod of the socket sets.
const modeBeforeBind = true

// siocUnixFile is SIOCUNIXFILE (linux/un.h, Linux 6.4): it opens the file
// an AF_UNIX socket is bound to, as an O_PATH fd. It needs CAP_NET_ADMIN.
const siocUnixFile = 0x89e0

// boundFile returns the identity of the file the socket fd is bound to,
// where the kernel says it (SIOCUNIXFILE: Linux 6.4 or later, and
// CAP_NET_ADMIN); ok is false elsewhere.
func boundFile(fd int) (dev, ino uint64, ok bool) {
	pfd, err := unix.IoctlRetInt(fd, siocUnixFile)
	if err != nil {
		return 0, 0, false
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if unix.Fstat(pfd, &st) != nil {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true
}

// openDirFlags opens a directory only to work relative to it: O_PATH needs
// no read permission on it.
const openDirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC

// procPath returns /proc/self/fd/FD, a name that path lookup resolves to
// the file fd is open on, whatever is at its name now, if /proc shows fd
// as that file.
func procPath(fd int) (string, bool) {
	name := "/proc/self/fd/" + strconv.Itoa(fd)
	var viaProc, direct unix.Stat_t
	if unix.Stat(name, &viaProc) != nil || unix.Fstat(fd, &direct) != nil ||
		viaProc.Dev != direct.Dev || viaProc.Ino != direct.Ino {
		return "", false
	}
	return name, true
}

// viaFD returns /proc/self/fd/DIR/NAME, a name for the file name in the
// directory dir that bind and connect resolve through the fd itself, if
// /proc shows that fd as that directory.
func viaFD(dir int, name string) (string, bool) {
	d, ok := procPath(dir)
	return d + "/" + name, ok
}

// physicalPath returns the system's name for the directory dir is open
// on: absolute, without symbolic links or "..", if /proc shows it and it
// still leads to dir.
func physicalPath(dir int) (string, bool) {
	name, ok := procPath(dir)
	if !ok {
		return "", false
	}
	phys, err := os.Readlink(name)
	var viaName, direct unix.Stat_t
	if err != nil || !filepath.IsAbs(phys) || unix.Stat(phys, &viaName) != nil || unix.Fstat(dir, &direct) != nil ||
		viaName.Dev != direct.Dev || viaName.Ino != direct.Ino {
		return "", false
	}
	return phys, true
}

// pinFile opens the file name in dir, never following a symbolic link, as
// an O_PATH fd: it pins the file (its inode number cannot be reused while
// the fd is open), and procPath gives a name that reaches it.
func pinFile(dir int, name string) (int, error) {
	return unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// renameNoReplace renames the file from in fromDir to to in toDir, and
// fails with EEXIST if a file is at to. Where the file system has no
// RENAME_NOREPLACE, it links and unlinks.
func renameNoReplace(fromDir int, from string, toDir int, to string) error {
	err := unix.Renameat2(fromDir, from, toDir, to, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		return linkNoReplace(fromDir, from, toDir, to)
	}
	return err
}
