package sockfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows, package net binds the socket itself, at its path: Windows
// has no file modes or owners to set before the socket appears (the file
// takes the ACL its directory passes on), and a socket file is a reparse
// point that bind creates and never replaces (it fails with
// WSAEADDRINUSE if anything is at the path). What Create does beyond
// that on Unix is kept where Windows allows it: Check judges what is at
// the path before bind, and removes a stale socket only with RemoveStale,
// through a handle to the very file judged; Bound takes the identity of
// the socket file bind made, so that Remove deletes that file and no
// other, again through a handle. Not kept: the private directory and the
// rename into place (nothing is set between bind and listen that a
// client must not see), and the holder of a live socket in errors
// (Windows shows no socket's path).

// ioReparseTagAFUnix is the reparse tag of a socket file.
const ioReparseTagAFUnix = 0x80000023

// Stale sockets: Windows refuses a connect to a socket file nobody listens
// on (WSAECONNREFUSED), and may refuse one to a live server whose backlog
// is full; a socket is taken for stale only when probeTries connects,
// probeGap apart, are all refused.
const (
	probeTries = 3
	probeGap   = 20 * time.Millisecond
)

// Check judges what is at path before package net binds a socket there:
// nil if nothing is there, or once a stale socket that o allows to
// replace is removed; else an *InUseError that says what is in the way,
// or the error that kept it from looking.
func Check(path string, o Options) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for range 3 {
		id, kind, err := look(abs)
		if err != nil || id == nil {
			return err
		}
		err = judge(kind, func() (bool, error) { return probe(path) }, func() string { return "" }, o)
		if errors.Is(err, errStale) {
			err = removeSame(abs, *id)
		}
		if !errors.Is(err, errChanged) {
			return err
		}
	}
	return &InUseError{"the file at this path kept changing while it was checked; it is left alone"}
}

// Bound returns the socket file package net has just bound at path, to be
// removed by Remove while it is still that file.
func Bound(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	id, kind, err := look(abs)
	switch {
	case err != nil:
		return nil, err
	case id == nil || kind != "":
		return nil, errors.New("the socket file at " + path + " was removed or replaced right after bind")
	}
	return &File{dir: -1, path: abs, dev: id.vol, ino: id.index}, nil
}

func (f *File) remove() error {
	err := removeSame(f.path, fileID{f.dev, f.ino})
	if errors.Is(err, errChanged) {
		return nil // not ours any more: left alone
	}
	return err
}

func (f *File) close() error { return nil }

// fileID is a file's identity: its volume's serial number and its file
// index, as os.SameFile compares them.
type fileID struct{ vol, index uint64 }

// open opens the file at path itself, never what a reparse point (a
// symbolic link, a junction, a socket) leads to, with access, sharing
// every access with others; it returns 0 if there is no file.
func open(path string, access uint32) (windows.Handle, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	h, err := windows.CreateFile(p, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	switch {
	case err == nil:
		return h, nil
	case errors.Is(err, windows.ERROR_FILE_NOT_FOUND):
		return 0, nil
	}
	return 0, &os.PathError{Op: "open", Path: path, Err: err}
}

// look returns the identity of the file at path (nil if there is none)
// and what it is: "" for a socket, else the kind of file judge names.
func look(path string) (*fileID, string, error) {
	h, err := open(path, windows.FILE_READ_ATTRIBUTES)
	if err != nil || h == 0 {
		return nil, "", err
	}
	defer windows.CloseHandle(h)
	return identify(h, path)
}

// identify returns the identity of the open file h and what it is.
func identify(h windows.Handle, path string) (*fileID, string, error) {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return nil, "", &os.PathError{Op: "stat", Path: path, Err: err}
	}
	id := &fileID{uint64(info.VolumeSerialNumber), uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow)}
	kind := "a regular file"
	if info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0 {
		kind = "a directory"
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		var tag struct{ FileAttributes, ReparseTag uint32 } // FILE_ATTRIBUTE_TAG_INFO
		if err := windows.GetFileInformationByHandleEx(h, windows.FileAttributeTagInfo, (*byte)(unsafe.Pointer(&tag)), uint32(unsafe.Sizeof(tag))); err != nil {
			return nil, "", &os.PathError{Op: "stat", Path: path, Err: err}
		}
		switch tag.ReparseTag {
		case ioReparseTagAFUnix:
			kind = ""
		case windows.IO_REPARSE_TAG_SYMLINK:
			kind = "a symbolic link"
		case windows.IO_REPARSE_TAG_MOUNT_POINT:
			kind = "a junction"
		default:
			kind = "a reparse point that is not a socket"
		}
	}
	return id, kind, nil
}

// probe reports whether a server accepts connections on the socket file
// at path: a connection means it is live; refused connects (probeTries of
// them) mean it is stale; no file means it went meanwhile (errChanged).
// A probe that connects is closed at once: a live server sees an empty
// connection.
func probe(path string) (bool, error) {
	for i := 1; ; i++ {
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		switch {
		case err == nil:
			c.Close()
			return true, nil
		case errors.Is(err, windows.WSAECONNREFUSED) && i < probeTries:
			time.Sleep(probeGap)
		case errors.Is(err, windows.WSAECONNREFUSED):
			return false, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, errChanged
		default:
			var op *net.OpError
			if errors.As(err, &op) {
				err = op.Err
			}
			return false, err
		}
	}
}

// removeSame removes the file at path if it is the socket id: it opens the
// file there, checks that it is that socket, and deletes it through that
// very handle, so that a file put at the path meanwhile is never removed
// (errChanged then, as when there is no file).
func removeSame(path string, id fileID) error {
	h, err := open(path, windows.DELETE|windows.FILE_READ_ATTRIBUTES)
	if err != nil || h == 0 {
		if err == nil {
			err = errChanged
		}
		return err
	}
	defer windows.CloseHandle(h)
	got, kind, err := identify(h, path)
	if err != nil {
		return err
	}
	if *got != id || kind != "" {
		return errChanged
	}
	if err := deleteHandle(h); err != nil {
		return &os.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

// deleteHandle deletes the open file h: with POSIX semantics, which take
// the name away at once even while another handle (the listening
// socket's) is open, where Windows has them (Windows 10 1607 and later,
// NTFS), as os.Remove does; else when the last handle is closed.
func deleteHandle(h windows.Handle) error {
	ex := struct{ Flags uint32 }{windows.FILE_DISPOSITION_DELETE | windows.FILE_DISPOSITION_POSIX_SEMANTICS}
	if windows.SetFileInformationByHandle(h, windows.FileDispositionInfoEx, (*byte)(unsafe.Pointer(&ex)), uint32(unsafe.Sizeof(ex))) == nil {
		return nil
	}
	info := struct{ DeleteFile bool }{true} // FILE_DISPOSITION_INFO
	return windows.SetFileInformationByHandle(h, windows.FileDispositionInfo, (*byte)(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info)))
}
