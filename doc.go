// Package anylisten lets a Go server listen wherever its operator says, with
// one string: a TCP address, a UNIX socket path, a Linux abstract socket,
// sockets passed by systemd, inetd's stdin/stdout, AF_VSOCK or a Windows
// named pipe.
//
// ParseAddress turns the string from a flag or a config file into an
// Address; Listen turns the Address into a net.Listener for http.Serve,
// gRPC or any accept loop:
//
//	addr := anylisten.MustParseAddress("127.0.0.1:8080")
//	var opts anylisten.Options
//	flag.Var(&addr, "listen", anylisten.AddressHelp)
//	opts.RegisterFlags(flag.CommandLine)
//	flag.Parse()
//	ln, err := anylisten.Listen(ctx, addr, &opts)
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Fatal(http.Serve(ln, handler))
//
// # Address forms
//
//	127.0.0.1:8080, [::1]:80, :8080, 8080, localhost:8080   TCP (all platforms)
//	/run/app.sock, ./app.sock, unix:app.sock                UNIX socket path (unix platforms; Windows: stream sockets, fewer options)
//	@name                                                   Linux abstract UNIX socket (Linux)
//	inetd                                                   one connection on stdin/stdout (unix platforms)
//	sd-listen, sd-listen:NAME, sd-listen:*, fd://N          sockets passed by systemd (unix platforms)
//	vsock:CID:PORT                                          AF_VSOCK (Linux)
//	udp://HOST:PORT                                         UDP, for ListenPacket (all platforms)
//	unixpacket:/run/app.sock, unixpacket:@name              UNIX SOCK_SEQPACKET, for Listen (unix platforms; @name Linux)
//	unixgram:/run/app.sock, unixgram:@name                  UNIX datagram socket, for ListenPacket (unix platforms; @name Linux)
//	\\.\pipe\NAME, npipe://NAME                             Windows named pipe, through github.com/Microsoft/go-winio (Windows)
//
// ParseAddress documents every form. It accepts the same forms on every
// platform, with one difference: UNIX socket paths and abstract names are
// limited to what the platform's sun_path holds (107 bytes on Linux,
// Windows, Solaris and illumos, 103 on macOS and the BSDs, 1022 on AIX).
// Listen on a platform without the backend (@name outside Linux, say)
// returns an error that wraps errors.ErrUnsupported. A UNIX path gives a
// *UnixListener everywhere, Windows included.
//
// # Windows
//
// Windows has TCP, AF_UNIX stream sockets (Windows 10 1803 and later) and
// named pipes. Listen of \\.\pipe\NAME returns go-winio's pipe listener,
// unwrapped; Options.NpipeSecurityDescriptor (SDDL) says who may connect,
// as the socket file's mode and owner do on Unix. A UNIX path keeps the
// socket-file rules Windows allows: nothing but a stale socket is ever
// replaced (and that only with Options.UnixListenUnlink), and Close
// removes only the socket file Listen made; the file's mode and owner
// cannot be set (it takes its directory's ACL). Windows has no systemd and
// no inetd: sd-listen, fd:// and inetd give errors wrapping
// errors.ErrUnsupported there, and so does an Upgrader's Upgrade (its
// Listen works as Listen does; listeners are not handed over). go-winio
// is imported only on Windows.
//
// # What Listen returns
//
// The kernel's own listener and connections, never a wrapper around a
// connection: Accept returns *net.TCPConn for TCP and *net.UnixConn for
// UNIX and abstract sockets, so sendfile, splice, CloseWrite and
// SyscallConn keep working and a connection costs what it costs with
// net.Listen. See Listen for the concrete listener types; the one
// exception is the single connection of inetd mode and of systemd's
// Accept=yes, which embeds the real connection to learn when it is closed.
//
// # Datagram sockets
//
// ListenPacket turns the same strings into a net.PacketConn: a TCP form
// or udp:// into a *net.UDPConn, a UNIX path into a *UnixgramConn (a
// *net.UnixConn whose Close removes its socket file), @name into a
// *net.UnixConn, and sd-listen, sd-listen:NAME and fd://N into the passed
// datagram socket. So one address serves a server's stream and datagram
// sides (DNS on :53), and Upgrader.ListenPacket hands datagram sockets to a
// successor with what is queued in them.
//
// # Inherited sockets
//
// Sockets passed by systemd are taken by the sd-listen and fd:// forms,
// and also by a plain TCP or UNIX address when a passed socket is bound to
// exactly that address, so that one configuration works for a cold start
// and for socket activation (Options.NoAdopt turns that off). The passed
// fds are made close-on-exec when the package initialises; the LISTEN_*
// environment is read once, checked, and removed once a passed socket is
// taken; every fd is inspected before use and handed out once.
//
// # Several addresses, clients, restarts
//
// ListenAll merges several addresses into one listener, which takes a
// connection from the kernel only in its Accept (AddressList is the
// matching repeatable flag); Dial and Address.DialContext reach a
// server by the same string it listens on. An Upgrader hands every
// listening socket to a new process of the program for a restart without
// a refused connection; package httpdrain stops the old net/http server
// without losing a request.
//
// # Peer credentials
//
// PeerCredentials tells a server which user, group and process are at the
// other end of a UNIX connection, as the kernel recorded them when that
// process connected. Options.UnixAllowUID and UnixAllowGID make a UNIX
// listener close, inside Accept, every connection whose peer is not on
// them, before the server reads a byte; where no peer has credentials
// (TCP, ListenPacket) they are an error rather than ignored.
//
// # UNIX socket files
//
// A socket file appears at its path only when it is complete: Listen binds
// the socket in a private directory next to the path, sets the mode and
// owner (Options.UnixListenChmod, UnixListenUID, UnixListenGID) there,
// calls listen, and then moves it to the path with a rename that replaces
// nothing. So no client with fewer rights than asked can ever connect, no
// link swapped in at the path is ever followed, and of two servers starting
// at once exactly one gets the path. Options.UnixListenUnlink replaces only
// a socket file that nobody accepts on (a connect probe is refused); a live
// server's socket, a regular file, a directory or a symlink is never
// removed, and a leftover socket without the option is an error that names
// it. Close removes the socket file only while it is still the one the
// listener placed. The kernel's name for such a socket (the LocalAddr of
// accepted connections) is where it was bound, DIR/.anylisten-XXXXXXXX/NAME;
// UnixListener.Addr is the path.
package anylisten

// Files: one concept per file, exported names only in files without a
// build line, and a suffix that says the build constraint (_unix, _nonunix,
// _linux, _nonlinux, _unixnonlinux, ...); see README's Layout.
