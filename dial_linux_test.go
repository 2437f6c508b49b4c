package anylisten

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anylisten/anylisten/internal/testenv"
)

func TestDial(t *testing.T) {
	checkNoFDLeak(t)
	dir := testenv.SocketDir(t)
	for _, s := range []string{"127.0.0.1:0", ":0", "[::1]:0", "unix:" + filepath.Join(dir, "d.sock"), "@anylisten-dial-" + strconv.Itoa(os.Getpid())} {
		t.Run(s, func(t *testing.T) {
			ln := listenT(t, s, nil)
			addr := s
			if ta, ok := ln.Addr().(*net.TCPAddr); ok {
				addr = strings.TrimSuffix(s, "0") + strconv.Itoa(ta.Port)
			}
			done := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_, err = c.Write([]byte("hi"))
					c.Close()
				}
				done <- err
			}()
			c, err := Dial(context.Background(), MustParseAddress(addr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "hi" {
				t.Errorf("read %q, %v", b, err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"inetd", "dial inetd: an inherited socket names no address"},
		{"sd-listen:http", "dial systemd sd-listen:http: an inherited socket"},
		{"vsock:any:80", "vsock:any names no peer"},
		{"unix:/nonexistent/x.sock", "no such file or directory"},
	} {
		c, err := Dial(context.Background(), MustParseAddress(tt.addr))
		if c != nil || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Dial(%s) = %v, %v; want an error saying %q", tt.addr, c, err, tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, MustParseAddress("vsock:1:80")); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("Dial with a canceled context: %v", err)
	}
}

func TestDialContextHTTP(t *testing.T) {
	for _, s := range []string{"unix:" + filepath.Join(testenv.SocketDir(t), "h.sock"), "@anylisten-http-" + strconv.Itoa(os.Getpid())} {
		t.Run(s, func(t *testing.T) {
			addr := MustParseAddress(s)
			ln := listenT(t, s, nil)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello "+r.URL.Path)
			})}
			go srv.Serve(ln)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{DialContext: addr.DialContext}}
			defer client.CloseIdleConnections()
			resp, err := client.Get("http://app/x")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "hello /x" {
				t.Errorf("body %q", b)
			}
		})
	}
}
