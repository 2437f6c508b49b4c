package testenv

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

// HTTPGet sends GET url through a client whose connections dial opens (an
// anylisten.Address's DialContext, which ignores the network and address
// it is given) and returns the response body. The test fails at once on
// an error or a status other than 200 OK, and after Timeout.
func HTTPGet(t testing.TB, dial func(ctx context.Context, network, address string) (net.Conn, error), url string) string {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: Timeout}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %q, %v", url, resp.Status, body, err)
	}
	return string(body)
}
