//go:build go1.24

package httpdrain_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/anylisten/anylisten/httpdrain"
)

// TestDrainUnencryptedHTTP2 drains HTTP/2 without TLS, as a server with
// http.Protocols' UnencryptedHTTP2 serves it (Go 1.24 and later).
func TestDrainUnencryptedHTTP2(t *testing.T) {
	testDrainHTTP2(t, func(t *testing.T, h http.Handler) (*httpdrain.Drainer, string, *http.Client, <-chan error) {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		d := httpdrain.New(&http.Server{Handler: h, Protocols: &p})
		ln := listenTCP(t)
		served := make(chan error, 1)
		go func() { served <- d.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			defer cancel()
			d.Drain(ctx)
		})
		var cp http.Protocols
		cp.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &cp}
		t.Cleanup(tr.CloseIdleConnections)
		return d, "http://" + ln.Addr().String(), &http.Client{Transport: tr}, served
	})
}
