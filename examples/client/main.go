// Command client reaches a server by the same address string the server
// was given: a TCP address, a UNIX socket path, a Linux abstract name or a
// vsock address. It is the other half of examples/hello, and what
// curl --unix-socket and curl --abstract-unix-socket do, for every form.
//
// Usage:
//
//	client [-X METHOD] ADDRESS [PATH]
//	client -raw ADDRESS
//
// The first form sends one HTTP/1.1 request for PATH (default /) and
// prints the response body, exactly as received, to standard output. The
// connection goes to ADDRESS whatever the URL says; the Host header is the
// TCP host and port (localhost:PORT for :PORT), or localhost for the other
// kinds. Redirects are not followed and no proxy is used, as with curl.
//
// The second form is a tiny socat: it connects to ADDRESS, copies standard
// input to the connection and the connection to standard output, and exits
// once the server has closed its end. The end of standard input is passed
// on as a half-close (shutdown SHUT_WR), so a server that reads until EOF
// sees it and can still answer.
//
// inetd and sd-listen addresses say where a server gets its socket from,
// not where it listens: client refuses them. Exit status: 0 on success, 1
// if connecting or copying fails or the server answers with an HTTP status
// of 400 or more (whose body is still printed), 2 for a wrong command line.
// Errors go to standard error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/anylisten/anylisten"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("client: ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs client with the command-line arguments args and returns the
// exit status.
func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	method := fs.String("X", http.MethodGet, "send the HTTP request with `METHOD`")
	raw := fs.Bool("raw", false, "copy standard input to the connection and the connection to standard output, instead of HTTP")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // fs has printed the error and the usage
	}
	args = fs.Args()
	methodSet := false
	fs.Visit(func(f *flag.Flag) { methodSet = methodSet || f.Name == "X" })
	switch {
	case len(args) == 0:
		return usageError("missing ADDRESS")
	case *raw && methodSet:
		return usageError("-X has no meaning with -raw, which sends no HTTP request")
	case *raw && len(args) > 1:
		return usageError(fmt.Sprintf("-raw takes ADDRESS only; what is %q?", args[1:]))
	case len(args) > 2:
		return usageError(fmt.Sprintf("too many arguments: %q; want ADDRESS and at most PATH", args[2:]))
	}
	addr, err := anylisten.ParseAddress(args[0])
	if err != nil {
		return usageError(err.Error())
	}
	switch addr.Kind() {
	case anylisten.KindInetd:
		return usageError(args[0] + ": a server given this address serves the connection inetd passes on stdin and stdout; " +
			"it names no address to connect to: give the address inetd listens on, like 127.0.0.1:8080")
	case anylisten.KindSystemd:
		return usageError(args[0] + ": a server given this address serves a socket systemd passes; " +
			"it names no address to connect to: give the address of that socket (ListenStream= of the .socket unit), " +
			"like 127.0.0.1:8080 or /run/app.sock")
	}

	if *raw {
		if err := copyConn(ctx, addr, os.Stdin, os.Stdout); err != nil {
			log.Print(err)
			return 1
		}
		return 0
	}
	path := "/"
	if len(args) == 2 {
		path = args[1]
	}
	if !strings.HasPrefix(path, "/") {
		return usageError(fmt.Sprintf("PATH %q must start with /", path))
	}
	req, err := http.NewRequestWithContext(ctx, *method, "http://"+hostHeader(addr)+path, nil)
	if err != nil {
		return usageError(err.Error())
	}
	status, err := fetch(addr, req, os.Stdout)
	if err != nil {
		log.Printf("%s %s %s: %v", req.Method, addr, req.URL.RequestURI(), err)
		return 1
	}
	if status.code >= 400 {
		log.Printf("%s %s %s: the server answered %s", req.Method, addr, req.URL.RequestURI(), status.text)
		return 1
	}
	return 0
}

// hostHeader returns the host of the request URL, which goes into the Host
// header only: the connection goes to the Address.
func hostHeader(addr anylisten.Address) string {
	if addr.Kind() != anylisten.KindTCP {
		return "localhost"
	}
	hostPort := strings.TrimPrefix(addr.String(), "tcp://")
	if strings.HasPrefix(hostPort, ":") {
		return "localhost" + hostPort
	}
	return hostPort
}

type status struct {
	code int
	text string
}

// fetch sends req to the server at addr and copies the response body to w.
func fetch(addr anylisten.Address, req *http.Request, w io.Writer) (status, error) {
	client := &http.Client{
		Transport: &http.Transport{DialContext: addr.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error repeats the URL, whose host is not where the
		// request went; the caller names the address instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return status{}, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return status{}, fmt.Errorf("reading the response body: %w", err)
	}
	return status{resp.StatusCode, resp.Status}, nil
}

// copyConn connects to addr, copies in to the connection and the
// connection to out, and returns once the server has closed its end (or
// ctx is done). The end of in closes the connection for writing.
func copyConn(ctx context.Context, addr anylisten.Address, in io.Reader, out io.Writer) error {
	conn, err := anylisten.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A signal closes the connection, which ends both copies.
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, in)
		if err == nil {
			err = closeWrite(conn)
		} else {
			err = fmt.Errorf("sending: %w", err)
		}
		sent <- err
	}()
	_, err = io.Copy(out, conn)
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", addr, context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("receiving from %s: %w", addr, err)
	}
	// The server has closed its end. Standard input may still be open,
	// its copy blocked in a read: that is no failure. A copy that already
	// failed is.
	select {
	case err := <-sent:
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	default:
	}
	return nil
}

// closeWrite shuts down the writing half of c: *net.TCPConn,
// *net.UnixConn and *vsock.Conn can.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return fmt.Errorf("closing for writing: %w", err)
		}
	}
	return nil
}

// usageError prints msg and a hint to standard error and returns the exit
// status of a wrong command line.
func usageError(msg string) int {
	log.Printf("%s (client -h for help)", msg)
	return 2
}

func usage(fs *flag.FlagSet) {
	fmt.Fprint(fs.Output(), `Reaches a server by the address it listens on.

Usage:
  client [-X METHOD] ADDRESS [PATH]   send an HTTP request for PATH (default /), print the body
  client -raw ADDRESS                 copy standard input to the connection, the connection to standard output

ADDRESS is what the server was given (options come before it):
  127.0.0.1:8080, [::1]:8080, localhost:8080, :8080 or 8080 (this machine)
  /run/app.sock, ./app.sock, ../app.sock or unix:PATH    UNIX socket path
  @name                                                  Linux abstract socket
  vsock:CID:PORT                                         AF_VSOCK; CID a number, local or host

Exit status: 0 on success; 1 if connecting or copying fails or the HTTP
status is 400 or more (the body is still printed); 2 for a wrong command line.

Options:
`)
	fs.PrintDefaults()
}
