package sockfile

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// openDirFlags opens a directory only to work relative to it: O_PATH needs
// no read permission on it.
const openDirFlags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC

// viaFD returns /proc/self/fd/DIR/NAME, a name for the file name in the
// directory dir that bind and connect resolve through the fd itself, if
// /proc shows that fd as that directory.
func viaFD(dir int, name string) (string, bool) {
	fdPath := "/proc/self/fd/" + strconv.Itoa(dir)
	var viaProc, direct unix.Stat_t
	if unix.Stat(fdPath, &viaProc) != nil || unix.Fstat(dir, &direct) != nil ||
		viaProc.Dev != direct.Dev || viaProc.Ino != direct.Ino {
		return "", false
	}
	return fdPath + "/" + name, true
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
