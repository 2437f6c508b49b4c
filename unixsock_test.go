package anylisten

import (
	"strings"
	"testing"
)

// devicePathError, which Listen applies on Windows, refuses the UNIX paths
// that Windows reads as device paths, and says how to listen on a pipe.
func TestDevicePathError(t *testing.T) {
	for _, tt := range []struct {
		path, want string // want "" for a path that is a file's
	}{
		{"//./pipe/app", `on Windows the path //./pipe/app names the named pipe \\.\pipe\app, not a file: write \\.\pipe\app or npipe://app to listen on the pipe`},
		{`\\.\PIPE\app`, `on Windows the path \\.\PIPE\app names the named pipe \\.\pipe\app, not a file: write \\.\pipe\app or npipe://app to listen on the pipe`},
		{`//?/pipe/app`, `names the named pipe \\.\pipe\app`},
		{"//./COM1", "on Windows the path //./COM1 names a device, not a file for a UNIX socket"},
		{`\\.\pipe`, "names a device"},
		{"/run/app.sock", ""},
		{"//server/share/app.sock", ""},
		{"./app.sock", ""},
		{`C:\run\app.sock`, ""},
		{"//.", ""},
	} {
		err := devicePathError(tt.path)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("devicePathError(%q) = %v, want nil", tt.path, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("devicePathError(%q) = %v, want %q", tt.path, err, tt.want)
		}
	}
}
