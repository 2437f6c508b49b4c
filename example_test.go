package anylisten_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/anylisten/anylisten"
)

func ExampleParseAddress() {
	for _, s := range []string{
		"127.0.0.1:8080",
		"8080",
		"tcp://[::1]:80",
		"./app.sock",
		"unix:///run/app.sock",
		"@app",
		"inetd",
		"sd-listen:http",
		"fd://3",
		"vsock:any:1024",
	} {
		addr, err := anylisten.ParseAddress(s)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-20s %-8s %s\n", s, addr.Kind(), addr)
	}

	// A relative path needs ./ or unix:, so that a mistyped TCP address
	// is not taken for a file name.
	_, err := anylisten.ParseAddress("app.sock")
	fmt.Println(err)

	// Output:
	// 127.0.0.1:8080       tcp      127.0.0.1:8080
	// 8080                 tcp      :8080
	// tcp://[::1]:80       tcp      [::1]:80
	// ./app.sock           unix     ./app.sock
	// unix:///run/app.sock unix     /run/app.sock
	// @app                 abstract @app
	// inetd                inetd    inetd
	// sd-listen:http       systemd  sd-listen:http
	// fd://3               systemd  fd://3
	// vsock:any:1024       vsock    vsock:any:1024
	// anylisten: invalid listen address "app.sock": neither a TCP address (HOST:PORT needs a port) nor a UNIX socket path (a relative path must start with ./ or ../: write ./app.sock or unix:app.sock)
}

// An HTTP server on a UNIX socket that only its owner and group may
// connect to. The same program serves TCP or a socket passed by systemd
// when given another address (an abstract socket has no file to give a
// mode: there, set UnixAllowUID or UnixAllowGID instead).
func ExampleListen() {
	addr := anylisten.MustParseAddress("./app.sock")
	opts := &anylisten.Options{
		UnixListenChmod:  0o660, // or anylisten.ParseUnixMode("group")
		UnixListenUnlink: true,  // replace the socket file a crashed run left
	}
	ln, err := anylisten.Listen(context.Background(), addr, opts)
	if err != nil {
		log.Fatal(err) // a *net.OpError: errors.Is(err, syscall.EADDRINUSE) works
	}
	log.Printf("listening on %s", ln.Addr())

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "Hello, world")
	})
	// http.Serve closes ln when it returns, which removes ./app.sock; so
	// would ln.Close, from a signal handler, say.
	log.Fatal(http.Serve(ln, handler))
}

// A server that takes connections on the public TCP port and on a UNIX
// socket for local tools, with one accept loop.
func ExampleListenAll() {
	addrs := []anylisten.Address{
		anylisten.MustParseAddress(":8080"),
		anylisten.MustParseAddress("/run/app/app.sock"),
	}
	// The Options apply to every address where they fit: the mode to the
	// UNIX socket, the keep-alive to TCP.
	opts := &anylisten.Options{
		UnixListenChmod: 0o660,
		TCPKeepalive:    &anylisten.TCPKeepalive{Count: 3},
	}
	ln, err := anylisten.ListenAll(context.Background(), addrs, opts)
	if err != nil {
		log.Fatal(err) // names the address that failed; nothing is left open
	}
	log.Printf("listening on %s", ln.Addr()) // tcp:[::]:8080,unix:/run/app/app.sock

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// r.RemoteAddr is an IP address and port for TCP, "@" for a UNIX
		// socket client.
		fmt.Fprintf(w, "Hello, %s\n", r.RemoteAddr)
	})
	log.Fatal(http.Serve(ln, handler))
}

// A server on a UNIX socket that only root and the members of group 1000
// may use, whatever the socket file's mode, which logs the peers it
// refuses and tells each request whom it serves. On an abstract socket
// (@name), which has no file permissions, the allow lists are the only
// access control.
func ExamplePeerCredentials() {
	opts := &anylisten.Options{
		UnixListenChmod: 0o666, // anyone may connect; the lists decide
		UnixAllowUID:    []uint32{0},
		UnixAllowGID:    []uint32{1000}, // the effective group or a supplementary one
		UnixRefused: func(r anylisten.Refusal) {
			// Called inside Accept: return quickly. (A local user can
			// connect in a loop; rate-limit the log in production.)
			if r.Err != nil {
				log.Printf("%v: refused a peer whose credentials could not be read: %v", r.Local, r.Err)
				return
			}
			p := r.Peer
			log.Printf("%v: refused uid %d (gid %d, groups %v, pid %d)", r.Local, p.UID, p.GID, p.Groups, p.PID)
		},
	}
	ln, err := anylisten.Listen(context.Background(), anylisten.MustParseAddress("/run/app/app.sock"), opts)
	if err != nil {
		log.Fatal(err)
	}

	type peerKey struct{}
	srv := &http.Server{
		// The credentials of the process that connected, as it was when
		// it connected.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if peer, err := anylisten.PeerCredentials(c); err == nil {
				ctx = context.WithValue(ctx, peerKey{}, peer)
			}
			return ctx
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			peer, _ := r.Context().Value(peerKey{}).(anylisten.Credentials)
			fmt.Fprintf(w, "Hello, uid %d\n", peer.UID)
		}),
	}
	log.Fatal(srv.Serve(ln))
}

// An HTTP client reaches a server on a UNIX or abstract socket, or any
// other address a server can be given, with two lines: a Transport that
// dials the Address, and a URL whose host goes into the Host header only.
func ExampleDial() {
	// A server on a UNIX socket in a directory of its own.
	dir, err := os.MkdirTemp("", "")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	addr := anylisten.MustParseAddress("unix:" + filepath.Join(dir, "app.sock"))
	ln, err := anylisten.Listen(context.Background(), addr, nil)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s for host %s\n", r.Method, r.URL, r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close() // closes ln and the server's connections

	// The client: the same address string the server was given.
	client := &http.Client{Transport: &http.Transport{DialContext: addr.DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://app/hello?lang=en")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)

	// Output:
	// GET /hello?lang=en for host app
}

// A server that listens on every address given with --listen, which may be
// repeated, and by default on 127.0.0.1:8080.
func ExampleAddressList() {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := anylisten.AddressList{anylisten.MustParseAddress("127.0.0.1:8080")}
	fs.Var(listen.Flag(), "listen", "`ADDRESS` to listen on; repeat it to listen on several\n"+anylisten.AddressHelp)
	// The first --listen replaces the default, the others append.
	err := fs.Parse([]string{"--listen", ":8080", "--listen=./app.sock", "-listen", "@admin"})
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println(listen)
	for _, addr := range listen {
		fmt.Println(addr.Kind(), addr)
	}
	// Then: ln, err := anylisten.ListenAll(ctx, listen, &opts)

	// Output:
	// :8080,./app.sock,@admin
	// tcp :8080
	// unix ./app.sock
	// abstract @admin
}

// Flag makes the addresses a list holds its default, which -h shows.
func ExampleAddressList_Flag() {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(os.Stdout)
	listen := anylisten.AddressList{anylisten.MustParseAddress("127.0.0.1:8080"), anylisten.MustParseAddress("@admin")}
	fs.Var(listen.Flag(), "listen", "listen on `ADDRESS` (repeatable)")
	fs.PrintDefaults()

	if err := fs.Parse(nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("without --listen:", listen)

	// Output:
	//   -listen ADDRESS
	//     	listen on ADDRESS (repeatable) (default 127.0.0.1:8080,@admin)
	// without --listen: 127.0.0.1:8080,@admin
}

// RegisterFlags gives a program tokio-listener's option flags, which set
// the Options that Listen takes.
func ExampleOptions_RegisterFlags() {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	var opts anylisten.Options
	opts.RegisterFlags(fs)
	err := fs.Parse([]string{
		"--unix-listen-unlink",
		"--unix-listen-chmod", "group",
		"--unix-listen-uid", "1000",
		"--tcp-keepalive", "60000:3:5000",
		"--tcp-reuse-port",
		"--recv-buffer-size=262144",
		"--tcp-listen-backlog", "128",
		"--unix-allow-uid", "0,1000",
		"--unix-allow-uid=1001", // repeated: appends
	})
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println("UnixListenUnlink:", opts.UnixListenUnlink)
	fmt.Printf("UnixListenChmod: %v (%#o)\n", opts.UnixListenChmod, uint32(opts.UnixListenChmod))
	fmt.Println("UnixListenUID:", *opts.UnixListenUID)
	fmt.Println("UnixListenGID set:", opts.UnixListenGID != nil)
	k := opts.TCPKeepalive
	fmt.Printf("TCPKeepalive: %v (Idle %v, Count %d, Interval %v)\n", k, k.Idle, k.Count, k.Interval)
	fmt.Println("TCPReusePort:", opts.TCPReusePort)
	fmt.Println("RecvBufferSize:", opts.RecvBufferSize)
	fmt.Println("SendBufferSize:", opts.SendBufferSize)
	fmt.Println("TCPListenBacklog:", opts.TCPListenBacklog)
	fmt.Println("UnixAllowUID:", opts.UnixAllowUID)

	// Output:
	// UnixListenUnlink: true
	// UnixListenChmod: group (0660)
	// UnixListenUID: 1000
	// UnixListenGID set: false
	// TCPKeepalive: 60000:3:5000 (Idle 1m0s, Count 3, Interval 5s)
	// TCPReusePort: true
	// RecvBufferSize: 262144
	// SendBufferSize: 0
	// TCPListenBacklog: 128
	// UnixAllowUID: [0 1000 1001]
}
