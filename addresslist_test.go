package anylisten

import (
	"encoding/json"
	"flag"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAddressListFlag(t *testing.T) {
	var l AddressList
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&l, "listen", "")
	if err := fs.Parse([]string{"--listen", "8080", "--listen=./a.sock", "-listen", "@admin"}); err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), ":8080,./a.sock,@admin"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := fs.Parse([]string{"--listen", "a.sock"}); err == nil {
		t.Error("a bad address was accepted")
	}
	if len(l) != 3 {
		t.Errorf("a failed Set changed the list to %v", l)
	}
}

func TestAddressListJSON(t *testing.T) {
	type config struct {
		Listen AddressList `json:"listen"`
	}
	for _, tt := range []struct{ in, want string }{
		{`{"listen":["127.0.0.1:80","unix:app.sock","fd://"]}`, "127.0.0.1:80,unix:app.sock,sd-listen:*"},
		{`{"listen":"@one"}`, "@one"},
		{`{"listen":[]}`, ""},
	} {
		var c config
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if got := c.Listen.String(); got != tt.want {
			t.Errorf("%s gave %q, want %q", tt.in, got, tt.want)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back config
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.Listen, back.Listen, cmp.Comparer(func(a, b Address) bool { return a == b })); diff != "" {
			t.Errorf("round trip through %s (-want +got):\n%s", out, diff)
		}
	}
	for _, bad := range []string{`{"listen":["8080","http://x"]}`, `{"listen":"app.sock"}`, `{"listen":5}`} {
		var c config
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s was accepted as %v", bad, c.Listen)
		}
	}
}

func TestAddressListUnmarshalText(t *testing.T) {
	l := AddressList{MustParseAddress("1")}
	if err := l.UnmarshalText([]byte("./x.sock")); err != nil || l.String() != "./x.sock" {
		t.Errorf("UnmarshalText gave %v, %v", l, err)
	}
}

func TestAddressListUnmarshalTOML(t *testing.T) {
	var l AddressList
	if err := l.UnmarshalTOML([]any{"8080", "@x"}); err != nil || l.String() != ":8080,@x" {
		t.Errorf("array: %v, %v", l, err)
	}
	if err := l.UnmarshalTOML("./a.sock"); err != nil || l.String() != "./a.sock" {
		t.Errorf("string: %v, %v", l, err)
	}
	for _, bad := range []any{[]any{"8080", int64(5)}, []any{"a.sock"}, int64(8080)} {
		if err := l.UnmarshalTOML(bad); err == nil || l.String() != "./a.sock" {
			t.Errorf("%v: err %v, list now %v", bad, err, l)
		}
	}
}
