// Command grpcdemo is a gRPC server and its client built on anylisten: the
// server serves gRPC's standard health service on any addresses anylisten
// takes, and the client checks it through the very same address strings.
//
// Usage:
//
//	grpcdemo serve [--listen ADDRESS]... [OPTIONS]
//	grpcdemo check [--service NAME] [--timeout DURATION] ADDRESS
//
// serve listens on every --listen address (127.0.0.1:50051 if none is
// given), merged by anylisten.ListenAll into one listener for one
// grpc.Server, and serves grpc.health.v1.Health, reporting SERVING. It logs
// "listening on ADDR" once it accepts connections. On SIGINT or SIGTERM it
// reports NOT_SERVING to every watcher, stops accepting, waits up to
// --grace for the RPCs in flight, closes the listeners (removing UNIX
// socket files) and exits with status 0, as it also does once the one
// connection of inetd mode (or of systemd's Accept=yes) has ended. A second
// signal kills it at once.
//
// check calls grpc.health.v1.Health/Check on the server at ADDRESS, which
// is what serve was given (inherited sockets aside): 127.0.0.1:50051,
// ./grpc.sock, unix:/run/grpc.sock, @name, unix-abstract:name, vsock:CID:PORT.
// It prints the status (SERVING) on standard output and exits with 0 if the
// service is SERVING, 1 otherwise.
//
// Neither ever writes to standard output otherwise: help, errors and logs go
// to standard error, because in inetd mode standard output is the
// connection. Command-line errors exit with status 2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/anylisten/anylisten"
)

const (
	defaultAddress = "127.0.0.1:50051"
	defaultGrace   = 10 * time.Second
	defaultTimeout = 5 * time.Second
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("grpcdemo: ")
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		os.Exit(serveMain(args))
	case "check":
		os.Exit(checkMain(args))
	case "-h", "-help", "--help", "help":
		usage(os.Stderr)
	default:
		log.Printf("unknown command %q; want serve or check (-h for help)", cmd)
		os.Exit(2)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Demo gRPC server and client for anylisten: gRPC's health service on any address.

Usage:
  grpcdemo serve [--listen ADDRESS]... [OPTIONS]
  grpcdemo check [--service NAME] [--timeout DURATION] ADDRESS

grpcdemo serve -h and grpcdemo check -h list the options.
`)
}

// serveConfig is what the command line of serve says.
type serveConfig struct {
	addrs anylisten.AddressList
	opts  anylisten.Options
	grace time.Duration
}

// parseServeFlags parses the arguments of serve. Help and errors go to
// the flag set's output, w; the error is flag.ErrHelp after -h.
func parseServeFlags(args []string, w io.Writer) (*serveConfig, error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("grpcdemo serve", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Var(&cfg.addrs, "listen", "listen on `ADDRESS`; repeat --listen to listen on several at once (default "+defaultAddress+").\n"+anylisten.AddressHelp)
	fs.DurationVar(&cfg.grace, "grace", defaultGrace, "how long a `duration` to wait for RPCs in flight after SIGINT or SIGTERM before cutting them off")
	cfg.opts.RegisterFlags(fs)
	// A UNIX peer the allow lists (--unix-allow-uid, --unix-allow-gid)
	// refuse is logged, never dropped silently.
	cfg.opts.UnixRefused = func(r anylisten.Refusal) { log.Print(r) }
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: grpcdemo serve [--listen ADDRESS]... [OPTIONS]\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments %q: give addresses with --listen", fs.Args())
		fmt.Fprintln(fs.Output(), err)
		return nil, err
	}
	if len(cfg.addrs) == 0 {
		cfg.addrs = anylisten.AddressList{anylisten.MustParseAddress(defaultAddress)}
	}
	return &cfg, nil
}

func serveMain(args []string) int {
	cfg, err := parseServeFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)

	ln, err := anylisten.ListenAll(ctx, cfg.addrs, &cfg.opts)
	if err != nil {
		log.Print(err) // a *net.OpError: errors.Is(err, syscall.EADDRINUSE) works
		return 1
	}
	log.Printf("listening on %s", ln.Addr())
	for _, s := range anylisten.Inherited() { // a passed socket no address asks for
		if s.TakenBy == "" && !s.Closed {
			log.Printf("passed socket fd %d (%s) on %v is not listened on", s.FD, s.Name, s.Addr)
		}
	}
	if err := serve(ctx, ln, cfg.grace); err != nil {
		log.Print(err)
		return 1
	}
	return 0
}

// serve serves the health service on ln until ctx is done, then stops
// gracefully, waiting up to grace for RPCs in flight. It returns nil after
// a graceful stop, and also when ln ends by itself: the listener of inetd
// mode returns net.ErrClosed once its one connection has been served.
// grpc.Server closes ln in every case.
func serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := grpc.NewServer()
	hs := health.NewServer() // reports SERVING for "", the whole server
	healthpb.RegisterHealthServer(srv, hs)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		srv.Stop()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Printf("stopping: health NOT_SERVING, no new connections, waiting up to %v for RPCs in flight", grace)
	hs.Shutdown() // NOT_SERVING to Check and to every Watch
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop() // closes ln, then waits for the RPCs in flight
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		log.Printf("RPCs still running after %v, cutting them off", grace)
		srv.Stop()
		<-stopped
	}
	// Serve returns nil after GracefulStop, or ErrServerStopped if the
	// signal came before it started (it closes ln then, too).
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Print("stopped")
	return nil
}

func checkMain(args []string) int {
	fs := flag.NewFlagSet("grpcdemo check", flag.ContinueOnError)
	service := fs.String("service", "", "the service `name` to ask about; empty means the whole server")
	timeout := fs.Duration("timeout", defaultTimeout, "give up after this `duration`")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprint(w, "Usage: grpcdemo check [--service NAME] [--timeout DURATION] ADDRESS\n\n"+
			"ADDRESS is what the server listens on; one of:\n")
		fmt.Fprintln(w, "  "+strings.ReplaceAll(dialHelp, "\n", "\n  "))
		fmt.Fprint(w, "\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		log.Printf("check takes one ADDRESS, got %q (-h for help)", fs.Args())
		return 2
	}
	addr, err := anylisten.ParseAddress(fs.Arg(0))
	if err != nil {
		log.Print(err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	status, err := check(ctx, addr, *service)
	if err != nil {
		log.Printf("check %s: %v", addr, err)
		return 1
	}
	fmt.Println(status)
	if status != healthpb.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}

// dialHelp describes the addresses check connects to.
const dialHelp = `TCP: 127.0.0.1:50051, [::1]:50051, localhost:50051, :50051 (this machine)
UNIX socket path: /run/grpc.sock, ./grpc.sock, unix:PATH, unix:///PATH
Linux abstract UNIX socket: @name, unix:@name, unix-abstract:name
vsock:CID:PORT (Linux)`

// check asks the health service on addr about service ("" for the whole
// server) and returns its status.
func check(ctx context.Context, addr anylisten.Address, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	// The passthrough resolver hands the target to the dialer unresolved,
	// and the dialer ignores it: anylisten.Dial connects to addr, whatever
	// its kind. The target's only other use is as the :authority of each
	// request (and the server name of TLS credentials); grpc.WithAuthority
	// sets another.
	conn, err := grpc.NewClient("passthrough:///localhost",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return anylisten.Dial(ctx, addr)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return resp.GetStatus(), nil
}
