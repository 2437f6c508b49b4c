package anylisten

import "net"

// maxSunPath is the longest socket path or abstract name that fits into
// Linux's 108-byte sun_path with its NUL.
const maxSunPath = 107

// listenAbstract listens on the Linux abstract socket @name, which lives in
// the network namespace, not the file system: nothing to chmod or unlink.
func listenAbstract(name string, o *Options) (net.Listener, error) {
	return bindUnix("@"+name, o, "")
}
