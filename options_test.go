package anylisten

import (
	"encoding/json"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseUnixMode(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    UnixMode
		text    string
		wantErr string
	}{
		{in: "owner", want: 0o600, text: "owner"},
		{in: "Group", want: 0o660, text: "group"},
		{in: "EVERYBODY", want: 0o666, text: "everybody"},
		{in: "0640", want: 0o640, text: "0640"},
		{in: "640", want: 0o640, text: "0640"},
		{in: "0o640", want: 0o640, text: "0640"},
		{in: "0600", want: 0o600, text: "owner"},
		{in: "7", want: 0o7, text: "0007"},
		{in: "0777", want: 0o777, text: "0777"},
		{in: "0", wantErr: "mode 0 lets nobody connect"},
		{in: "0000", wantErr: "mode 0 lets nobody connect"},
		{in: "0800", wantErr: "octal permission bits"},
		{in: "4755", wantErr: "octal permission bits"},
		{in: "+640", wantErr: "octal permission bits"},
		{in: "0o", wantErr: "octal permission bits"},
		{in: "owners", wantErr: `invalid UNIX socket mode "owners"`},
		{in: "", wantErr: "octal permission bits"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseUnixMode(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseUnixMode(%q) = %v, %v; want error %q", tt.in, m, err, tt.wantErr)
				}
				return
			}
			if err != nil || m != tt.want {
				t.Fatalf("ParseUnixMode(%q) = %#o, %v; want %#o", tt.in, m, err, tt.want)
			}
			if m.String() != tt.text {
				t.Errorf("String() = %q, want %q", m.String(), tt.text)
			}
			var back UnixMode
			if err := back.UnmarshalText([]byte(m.String())); err != nil || back != m {
				t.Errorf("round trip of %q gave %#o, %v", m.String(), back, err)
			}
		})
	}
}

func TestParseTCPKeepalive(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    TCPKeepalive
		text    string
		wantErr string
	}{
		{in: "", want: TCPKeepalive{}, text: ""},
		{in: "60000", want: TCPKeepalive{Idle: time.Minute}, text: "60000"},
		{in: "60000:3:5000", want: TCPKeepalive{Idle: time.Minute, Count: 3, Interval: 5 * time.Second}, text: "60000:3:5000"},
		{in: ":3:", want: TCPKeepalive{Count: 3}, text: ":3"},
		{in: "::5000", want: TCPKeepalive{Interval: 5 * time.Second}, text: "::5000"},
		{in: "1500::", want: TCPKeepalive{Idle: 1500 * time.Millisecond}, text: "1500"},
		{in: "off", want: TCPKeepalive{Off: true}, text: "off"},
		{in: "OFF", want: TCPKeepalive{Off: true}, text: "off"},
		{in: "x", wantErr: `failed to parse time "x" as a number`},
		{in: ":y", wantErr: `failed to parse count "y" as a number`},
		{in: "::-1", wantErr: `failed to parse interval "-1" as a number`},
		{in: "1:2:3:4", wantErr: "at most three parts"},
		{in: ":128", wantErr: "count 128 is out of range"},
		{in: "32768000", wantErr: "time 9h6m8s is out of range"},
		{in: "99999999999999999999", wantErr: `failed to parse time`},
		{in: "9999999999", wantErr: "out of range"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			k, err := ParseTCPKeepalive(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTCPKeepalive(%q) = %v, %v; want error %q", tt.in, k, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, k); diff != "" {
				t.Errorf("ParseTCPKeepalive(%q) (-want +got):\n%s", tt.in, diff)
			}
			if k.String() != tt.text {
				t.Errorf("String() = %q, want %q", k.String(), tt.text)
			}
			back, err := ParseTCPKeepalive(k.String())
			if err != nil || back != k {
				t.Errorf("round trip of %q gave %v, %v", k.String(), back, err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestRegisterFlags(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.RegisterFlags(fs)
	args := []string{
		"--unix-listen-unlink", "--unix-listen-chmod", "group", "--unix-listen-uid", "1000",
		"--unix-listen-gid=0", "--sd-accept-ignore-environment", "--tcp-keepalive", "60000:3:5000",
		"--tcp-reuse-port", "--recv-buffer-size", "65536", "--send-buffer-size=131072",
		"--tcp-only-v6", "--tcp-listen-backlog", "16", "--no-adopt", "--tcp-kill-port",
		"--npipe-security-descriptor", "D:P(A;;GA;;;OW)",
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := Options{
		UnixListenUnlink:          true,
		UnixListenChmod:           0o660,
		UnixListenUID:             ptr[uint32](1000),
		UnixListenGID:             ptr[uint32](0),
		SDAcceptIgnoreEnvironment: true,
		NoAdopt:                   true,
		TCPKeepalive:              &TCPKeepalive{Idle: time.Minute, Count: 3, Interval: 5 * time.Second},
		TCPReusePort:              true,
		RecvBufferSize:            65536,
		SendBufferSize:            131072,
		TCPOnlyV6:                 true,
		TCPListenBacklog:          16,
		TCPKillPort:               true,
		NpipeSecurityDescriptor:   "D:P(A;;GA;;;OW)",
	}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("options from flags (-want +got):\n%s", diff)
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if len(names) != 16 {
		t.Errorf("RegisterFlags registered %d flags, want 16: %v", len(names), names)
	}

	for _, bad := range [][]string{
		{"--unix-listen-chmod", "0999"},
		{"--unix-listen-uid", "-1"},
		{"--unix-listen-gid", "4294967295"},
		{"--tcp-keepalive", "a:b:c"},
	} {
		if err := fs.Parse(bad); err == nil {
			t.Errorf("flags %q parsed without error", bad)
		}
	}
}

// TestRegisterFlagsAllowLists parses --unix-allow-uid and --unix-allow-gid:
// comma lists, repeated flags that append, a first use that replaces the
// default, and errors that quote the input and change nothing.
func TestRegisterFlagsAllowLists(t *testing.T) {
	for _, tt := range []struct {
		name       string
		start      Options // the defaults
		args       []string
		uids, gids []uint32
	}{
		{"none", Options{}, nil, nil, nil},
		{"one", Options{}, []string{"--unix-allow-uid", "0"}, []uint32{0}, nil},
		{"list", Options{}, []string{"--unix-allow-uid=0,1000,33"}, []uint32{0, 1000, 33}, nil},
		{"repeated", Options{}, []string{"--unix-allow-uid", "0", "--unix-allow-gid", "100", "--unix-allow-uid=1000,1001", "--unix-allow-gid=4294967294"},
			[]uint32{0, 1000, 1001}, []uint32{100, 4294967294}},
		{"replaces-default", Options{UnixAllowUID: []uint32{5, 6}, UnixAllowGID: []uint32{7}}, []string{"--unix-allow-uid", "0", "--unix-allow-uid", "1"},
			[]uint32{0, 1}, []uint32{7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.start
			start := slices.Clone(o.UnixAllowUID)
			defaults := o.UnixAllowUID
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.uids, o.UnixAllowUID); diff != "" {
				t.Errorf("UnixAllowUID (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.gids, o.UnixAllowGID); diff != "" {
				t.Errorf("UnixAllowGID (-want +got):\n%s", diff)
			}
			if !slices.Equal(defaults, start) {
				t.Errorf("the default list's array was changed to %v, was %v", defaults, start)
			}
		})
	}

	for _, tt := range []struct{ arg, want string }{
		{"", `invalid user id list "": id 1 is empty; want ids separated by commas, like 0,1000`},
		{"1,,2", `invalid user id list "1,,2": id 2 is empty`},
		{"1,", `invalid user id list "1,": id 2 is empty`},
		{"-1", `invalid user id list "-1": "-1" is not a decimal user id 0 to 4294967294`},
		{"+1", `"+1" is not a decimal user id`},
		{"0x10", `"0x10" is not a decimal user id`},
		{"1 2", `"1 2" is not a decimal user id`},
		{"4294967295", `invalid user id list "4294967295": "4294967295" is not a decimal user id 0 to 4294967294`},
		{"4294967296", `"4294967296" is not a decimal user id`},
		{"root", `invalid user id list "root": "root" is not a decimal user id`},
	} {
		o := Options{UnixAllowUID: []uint32{9}}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.RegisterFlags(fs)
		err := fs.Parse([]string{"--unix-allow-uid", "3", "--unix-allow-uid", tt.arg})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("--unix-allow-uid %q: %v; want an error saying %q", tt.arg, err, tt.want)
		}
		if !slices.Equal(o.UnixAllowUID, []uint32{3}) {
			t.Errorf("--unix-allow-uid %q changed the list to %v; want it as before, [3]", tt.arg, o.UnixAllowUID)
		}
	}
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.RegisterFlags(fs)
	if err := fs.Parse([]string{"--unix-allow-gid=x"}); err == nil || !strings.Contains(err.Error(), `invalid group id list "x": "x" is not a decimal group id`) {
		t.Errorf("--unix-allow-gid=x: %v", err)
	}
	if got := fs.Lookup("unix-allow-uid").Value.String(); got != "" {
		t.Errorf("--unix-allow-uid's default is %q, want none", got)
	}
	o.UnixAllowUID = []uint32{0, 1000}
	if got := fs.Lookup("unix-allow-uid").Value.String(); got != "0,1000" {
		t.Errorf("--unix-allow-uid's String is %q, want 0,1000", got)
	}
	var usage strings.Builder
	fs.SetOutput(&usage)
	fs.PrintDefaults()
	for _, want := range []string{"-unix-allow-uid UID[,UID...]", "-unix-allow-gid GID[,GID...]"} {
		if !strings.Contains(usage.String(), want) {
			t.Errorf("usage does not say %q:\n%s", want, usage.String())
		}
	}
}

func TestRegisterFlagsEmptyKeepalive(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.RegisterFlags(fs)
	if err := fs.Parse([]string{"--tcp-keepalive="}); err != nil {
		t.Fatal(err)
	}
	if o.TCPKeepalive == nil || *o.TCPKeepalive != (TCPKeepalive{}) {
		t.Errorf("--tcp-keepalive= gave %v, want keep-alive on with the OS's timers", o.TCPKeepalive)
	}
}

func TestOptionsJSON(t *testing.T) {
	in := `{
		"unix_listen_unlink": true,
		"unix_listen_chmod": "0640",
		"unix_listen_uid": 33,
		"unix_listen_gid": 0,
		"sd_accept_ignore_environment": true,
		"tcp_keepalive": ":3:",
		"tcp_reuse_port": true,
		"recv_buffer_size": 4096,
		"send_buffer_size": 8192,
		"tcp_only_v6": true,
		"tcp_listen_backlog": 64,
		"tcp_kill_port": true,
		"npipe_security_descriptor": "D:P(A;;GA;;;BA)(A;;GA;;;SY)",
		"unix_allow_uid": [0, 1000],
		"unix_allow_gid": [4294967294]
	}`
	var o Options
	if err := json.Unmarshal([]byte(in), &o); err != nil {
		t.Fatal(err)
	}
	want := Options{
		UnixListenUnlink: true, UnixListenChmod: 0o640, UnixListenUID: ptr[uint32](33), UnixListenGID: ptr[uint32](0),
		SDAcceptIgnoreEnvironment: true, TCPKeepalive: &TCPKeepalive{Count: 3}, TCPReusePort: true,
		RecvBufferSize: 4096, SendBufferSize: 8192, TCPOnlyV6: true, TCPListenBacklog: 64, TCPKillPort: true,
		NpipeSecurityDescriptor: "D:P(A;;GA;;;BA)(A;;GA;;;SY)",
		UnixAllowUID:            []uint32{0, 1000}, UnixAllowGID: []uint32{4294967294},
	}
	if diff := cmp.Diff(want, o); diff != "" {
		t.Errorf("options from JSON (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Options
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(o, back); diff != "" {
		t.Errorf("JSON round trip via %s (-want +got):\n%s", out, diff)
	}
	if out, _ := json.Marshal(Options{UnixRefused: func(Refusal) {}}); string(out) != "{}" {
		t.Errorf("zero Options (with a UnixRefused hook, which is not configuration) marshal to %s, want {}", out)
	}
	for _, bad := range []string{`{"unix_allow_uid":[-1]}`, `{"unix_allow_gid":"0"}`, `{"unix_allow_uid":[4294967296]}`} {
		var o Options
		if err := json.Unmarshal([]byte(bad), &o); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"unix_listen_chmod":"rw"}`), &o); err == nil ||
		!strings.Contains(err.Error(), `invalid UNIX socket mode "rw"`) {
		t.Errorf("bad chmod in JSON: err = %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{RecvBufferSize: -1}, "recv_buffer_size is -1"},
		{Options{SendBufferSize: 1 << 40}, "send_buffer_size is 1099511627776"},
		{Options{TCPListenBacklog: -5}, "tcp_listen_backlog is -5"},
		{Options{UnixListenChmod: 0o4755}, "unix_listen_chmod is 04755"},
		{Options{UnixListenUID: ptr(^uint32(0))}, `"no change"`},
		{Options{UnixAllowUID: []uint32{0, 4294967295}}, "option unix_allow_uid lists 4294967295, which is (uid_t)-1, not a user id; want ids 0 to 4294967294"},
		{Options{UnixAllowGID: []uint32{4294967295}}, "option unix_allow_gid lists 4294967295, which is (gid_t)-1, not a group id"},
		{Options{TCPKeepalive: &TCPKeepalive{Count: -1}}, "tcp_keepalive: count -1"},
		{Options{TCPKeepalive: &TCPKeepalive{Off: true, Count: 3}}, "tcp_keepalive: keep-alive is off, yet timers are set"},
		{Options{TCPKeepalive: &TCPKeepalive{Idle: 10 * time.Hour}}, "tcp_keepalive: time 10h0m0s is out of range"},
		{Options{NpipeSecurityDescriptor: "owner"}, `npipe_security_descriptor "owner": not SDDL`},
		{Options{NpipeSecurityDescriptor: "0600"}, "not SDDL"},
		{Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;OW"}, "'(' without its ')'"},
		{Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;OW))"}, "')' without its '('"},
		{Options{NpipeSecurityDescriptor: "D:P(A;;GA;;;OW)\n"}, "control character"},
	} {
		err := tt.o.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.o, err, tt.want)
		}
	}
	if err := (&Options{}).Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
	// SDDL as Windows documents it, and as Docker and go-winio's tests use
	// it, passes the outline check.
	for _, sddl := range []string{
		"D:P(A;;GA;;;OW)", "D:P(A;;GA;;;BA)(A;;GA;;;SY)", "D:P(A;;0x1200FF;;;WD)", "D:NO_ACCESS_CONTROL",
		"O:BAG:SYD:(A;;GA;;;SY)", "S:(ML;;NW;;;LW)D:(A;;GA;;;WD)", " D:(A;;GRGW;;;S-1-5-21-1-2-3-1001)",
		`D:(XA;;FX;;;S-1-1-0;(@User.Title=="PM"))`,
	} {
		if err := (&Options{NpipeSecurityDescriptor: sddl}).Validate(); err != nil {
			t.Errorf("Validate of SDDL %q: %v", sddl, err)
		}
	}
}

func TestUnixModeUnmarshalTOML(t *testing.T) {
	for _, tt := range []struct {
		in   any
		want UnixMode
		err  string
	}{
		{int64(0o660), 0o660, ""},
		{"group", 0o660, ""},
		{"0640", 0o640, ""},
		{int64(660), 0, "invalid UNIX socket mode 660 (octal 01224)"},
		{int64(0), 0, "invalid UNIX socket mode 0"},
		{true, 0, "want a string"},
	} {
		var m UnixMode
		err := m.UnmarshalTOML(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || m != tt.want {
			t.Errorf("%v: %#o, %v; want %#o", tt.in, m, err, tt.want)
		}
	}
}

// A set but empty allow list, which admits nobody, survives a JSON round
// trip as [] (omitzero), and does not come back as no list at all, which
// would admit everybody.
func TestEmptyAllowListJSON(t *testing.T) {
	out, err := json.Marshal(Options{UnixAllowUID: []uint32{}})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"unix_allow_uid":[]}` {
		t.Errorf("Marshal = %s, want {\"unix_allow_uid\":[]}", out)
	}
	var back Options
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.UnixAllowUID == nil || len(back.UnixAllowUID) != 0 || back.UnixAllowGID != nil {
		t.Errorf("round trip gives %#v and %#v, want a set but empty uid list and no gid list", back.UnixAllowUID, back.UnixAllowGID)
	}
}
