package anylisten

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
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

// TestAddressListFlagDefault checks that AddressList.Flag shows the list's
// addresses as the default in -h, keeps them without --listen, replaces
// them with the first --listen and appends the others.
func TestAddressListFlagDefault(t *testing.T) {
	const def = "127.0.0.1:8000,@admin"
	for _, tt := range []struct {
		name string
		args []string
		want string // the list after parsing
	}{
		{"no flag", nil, def},
		{"one", []string{"--listen", "./a.sock"}, "./a.sock"},
		{"two", []string{"--listen", "./a.sock", "-listen=9000"}, "./a.sock,:9000"},
		{"three", []string{"--listen", "./a.sock", "-listen=9000", "--listen", "@admin"}, "./a.sock,:9000,@admin"},
		{"the default again", []string{"--listen", "@admin"}, "@admin"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defaults := AddressList{MustParseAddress("127.0.0.1:8000"), MustParseAddress("@admin")}
			l := defaults
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.Var(l.Flag(), "listen", "listen on `ADDRESS`")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got := l.String(); got != tt.want {
				t.Errorf("%q gave %q; want %q", tt.args, got, tt.want)
			}
			if got := defaults.String(); got != def {
				t.Errorf("%q changed the defaults' array to %q", tt.args, got)
			}
		})
	}

	t.Run("-h", func(t *testing.T) {
		for _, tt := range []struct {
			list AddressList
			want string
		}{
			{AddressList{MustParseAddress("127.0.0.1:8000"), MustParseAddress("@admin")},
				"  -listen ADDRESS\n    \tlisten on ADDRESS (default 127.0.0.1:8000,@admin)\n"},
			{AddressList{MustParseAddress("8000")}, "  -listen ADDRESS\n    \tlisten on ADDRESS (default :8000)\n"},
			{nil, "  -listen ADDRESS\n    \tlisten on ADDRESS\n"},
			{AddressList{}, "  -listen ADDRESS\n    \tlisten on ADDRESS\n"},
		} {
			var out strings.Builder
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(&out)
			fs.Var(tt.list.Flag(), "listen", "listen on `ADDRESS`")
			if err := fs.Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
				t.Errorf("-h: %v; want flag.ErrHelp", err)
			}
			if diff := cmp.Diff("Usage of test:\n"+tt.want, out.String()); diff != "" {
				t.Errorf("-h with the default %q (-want +got):\n%s", tt.list, diff)
			}
		}
	})

	t.Run("bad address", func(t *testing.T) {
		l := AddressList{MustParseAddress("8000")}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(l.Flag(), "listen", "")
		if err := fs.Parse([]string{"--listen", "a.sock"}); err == nil {
			t.Error("a bad address was accepted")
		}
		if got := l.String(); got != ":8000" {
			t.Errorf("a failed first Set changed the list to %q", got)
		}
		if err := fs.Parse([]string{"--listen", "9000", "--listen", "a.sock"}); err == nil {
			t.Error("a bad second address was accepted")
		}
		if got := l.String(); got != ":9000" {
			t.Errorf("a failed second Set changed the list to %q", got)
		}
	})
}

// TestAddressListDefaultJSON checks that a config file's addresses replace
// the default, that a missing key and null keep it, and that the first
// --listen then replaces the file's addresses.
func TestAddressListDefaultJSON(t *testing.T) {
	type config struct {
		Listen AddressList `json:"listen"`
	}
	for _, tt := range []struct {
		json string
		args []string
		want string
	}{
		{`{}`, nil, ":8000"},
		{`{"listen":null}`, nil, ":8000"},
		{`{"listen":"@one"}`, nil, "@one"},
		{`{"listen":["@one","./a.sock"]}`, nil, "@one,./a.sock"},
		{`{"listen":[]}`, nil, ""},
		{`{"listen":["@one","./a.sock"]}`, []string{"--listen", "9000", "--listen", "@two"}, ":9000,@two"},
		{`{}`, []string{"--listen", "9000"}, ":9000"},
	} {
		c := config{Listen: AddressList{MustParseAddress("8000")}}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.Var(c.Listen.Flag(), "listen", "")
		if err := json.Unmarshal([]byte(tt.json), &c); err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if got := c.Listen.String(); got != tt.want {
			t.Errorf("%s then %q gave %q; want %q", tt.json, tt.args, got, tt.want)
		}
	}
	for _, bad := range []string{`{"listen":["8000","http://x"]}`, `{"listen":[null]}`, `{"listen":5}`} {
		c := config{Listen: AddressList{MustParseAddress("8000")}}
		if err := json.Unmarshal([]byte(bad), &c); err == nil || c.Listen.String() != ":8000" {
			t.Errorf("%s: err %v, list %q; want an error and the default kept", bad, err, c.Listen)
		}
	}
}
