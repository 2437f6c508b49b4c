package anylisten

import (
	"errors"
	"strings"
)

// Windows named pipes (\\.\pipe\NAME) are served by
// github.com/Microsoft/go-winio, which only npipe_windows.go imports, so
// that no other platform's build depends on it. Its listener is returned
// as it is: go-winio creates the pipe's first instance so that Listen
// fails if the name exists (no other server's pipe is ever joined), makes
// the pipe refuse remote clients, and creates one instance per Accept.

// refuseNpipeOptions says why o cannot serve a named pipe, or nil. The
// socket file's mode and owner restrict who may connect to a UNIX socket;
// a pipe has no file, and without a security descriptor of its own it
// would get Windows's default, which is wider than what they asked for.
func refuseNpipeOptions(o *Options) error {
	if o.NpipeSecurityDescriptor == "" && (o.UnixListenChmod != 0 || o.UnixListenUID != nil || o.UnixListenGID != nil) {
		return errors.New("unix_listen_chmod, unix_listen_uid and unix_listen_gid restrict who may connect to a UNIX socket file, " +
			"which a named pipe does not have; set npipe_security_descriptor to say who may connect to the pipe " +
			"(the UNIX options then apply to UNIX paths only)")
	}
	return nil
}

// checkSDDL checks the outline of a security descriptor string, so that a
// config checked on any platform catches what is plainly no SDDL; Windows
// parses it in full when Listen creates the pipe.
func checkSDDL(s string) error {
	t := strings.TrimLeft(s, " ")
	if len(t) < 2 || t[1] != ':' || !strings.ContainsRune("OGDSogds", rune(t[0])) {
		return errors.New("not SDDL: want components O:, G:, D: or S:, like D:P(A;;GA;;;OW) (the server's account only)")
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ' || c == 0x7f:
			return errors.New("SDDL contains a control character")
		case c == '(':
			depth++
		case c == ')':
			if depth--; depth < 0 {
				return errors.New("SDDL has a ')' without its '('")
			}
		}
	}
	if depth != 0 {
		return errors.New("SDDL has a '(' without its ')'")
	}
	return nil
}
