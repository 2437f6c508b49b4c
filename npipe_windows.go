package anylisten

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// listenNpipe creates the named pipe of a and returns go-winio's listener
// on it, unwrapped.
func listenNpipe(a Address, o *Options) (net.Listener, error) {
	if err := refuseNpipeOptions(o); err != nil {
		return nil, err
	}
	path := a.Path()
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{
		SecurityDescriptor: o.NpipeSecurityDescriptor,
		InputBufferSize:    int32(o.RecvBufferSize), // Validate keeps them within int32
		OutputBufferSize:   int32(o.SendBufferSize),
	})
	if err != nil {
		return nil, pipeListenError(path, err)
	}
	return ln, nil
}

// pipeListenError names the option of a descriptor Windows could not
// parse. Any other failure while a pipe of the name exists is that name
// being taken (go-winio creates the first instance with FILE_CREATE,
// which Windows refuses with "Access is denied" for a name that exists):
// an error that says so and wraps EADDRINUSE, as a socket path in use
// does, rather than a misleading fs.ErrPermission.
func pipeListenError(path string, err error) error {
	var sddl *winio.SddlConversionError
	if errors.As(err, &sddl) {
		return fmt.Errorf("option npipe_security_descriptor %q: %w", sddl.Sddl, sddl.Err)
	}
	if pipeExists(path) {
		return errPipeInUse
	}
	return err
}

var errPipeInUse = fmt.Errorf("%w: a pipe of this name exists (another server listens on it, "+
	"or connections of one that closed are still open); Listen never joins another server's pipe: choose another name", syscall.EADDRINUSE)

// pipeExists reports whether a pipe of the name path exists, by listing it
// in the pipe file system, which (unlike opening it) connects to nothing.
// The listing takes the name for a pattern (a '*' or '?' in it matches
// other pipes too), so each name it gives is compared.
func pipeExists(path string) bool {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return false
	}
	var data windows.Win32finddata
	h, err := windows.FindFirstFile(p, &data)
	if err != nil {
		return false
	}
	defer windows.FindClose(h)
	name := path[len(pipePrefix):]
	for {
		if strings.EqualFold(windows.UTF16ToString(data.FileName[:]), name) { // Windows compares pipe names so
			return true
		}
		if windows.FindNextFile(h, &data) != nil {
			return false
		}
	}
}

// dialNpipe connects to the pipe at path with go-winio, which retries
// while every instance is busy, until ctx is done.
func dialNpipe(ctx context.Context, path string) (net.Conn, error) {
	return winio.DialPipeContext(ctx, path)
}
