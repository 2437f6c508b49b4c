package anylisten

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets of the text forms a config file or a flag hands to the
// library. Each checks that nothing panics, that every accepted input
// round-trips through the canonical text form, and that a rejected input
// leaves the value it was unmarshalled into as it was. Their seeds live in
// testdata/fuzz/<FuzzName>/; FuzzParseAddress and FuzzIsIPv4 are in
// address_test.go. .ci/run runs each one for a bounded time.

// FuzzKeepalive fuzzes ParseTCPKeepalive, the --tcp-keepalive T:C:I option.
func FuzzKeepalive(f *testing.F) {
	sentinel := TCPKeepalive{Idle: 7 * time.Second, Count: 7, Interval: 7 * time.Second}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseTCPKeepalive(s)
		u := sentinel
		uerr := u.UnmarshalText([]byte(s))
		if (err == nil) != (uerr == nil) {
			t.Fatalf("ParseTCPKeepalive(%q) err = %v, but UnmarshalText err = %v", s, err, uerr)
		}
		if err != nil {
			if k != (TCPKeepalive{}) {
				t.Errorf("ParseTCPKeepalive(%q) returned %+v with its error %v", s, k, err)
			}
			if u != sentinel {
				t.Errorf("a failed UnmarshalText(%q) changed the value from %+v to %+v", s, sentinel, u)
			}
			if prefix := "anylisten: invalid TCP keepalive " + strconv.Quote(s) + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("ParseTCPKeepalive(%q) error %q does not start with %q", s, err, prefix)
			}
			return
		}
		if u != k {
			t.Errorf("UnmarshalText(%q) = %+v, ParseTCPKeepalive = %+v", s, u, k)
		}
		if err := (&Options{TCPKeepalive: &k}).Validate(); err != nil {
			t.Errorf("ParseTCPKeepalive(%q) = %+v, which Validate rejects: %v", s, k, err)
		}
		for _, d := range []time.Duration{k.Idle, k.Interval} {
			if d%time.Millisecond != 0 {
				t.Errorf("ParseTCPKeepalive(%q) = %+v: not whole milliseconds", s, k)
			}
		}
		c := k.String()
		back, err := ParseTCPKeepalive(c)
		if err != nil {
			t.Fatalf("ParseTCPKeepalive(%q) = %+v, whose String %q does not parse: %v", s, k, c, err)
		}
		if back != k {
			t.Fatalf("ParseTCPKeepalive(%q) = %+v; its String %q parses to %+v", s, k, c, back)
		}
		if back.String() != c {
			t.Errorf("String is not stable: %q then %q", c, back.String())
		}
		text, err := k.MarshalText()
		if err != nil || string(text) != c {
			t.Errorf("MarshalText() = %q, %v; want %q", text, err, c)
		}
	})
}

// FuzzAddressUnmarshalText fuzzes Address.UnmarshalText, directly and
// through encoding/json (the text as a JSON string, as a whole JSON
// document, and as a field of a config struct), and AddressList's JSON
// form.
func FuzzAddressUnmarshalText(f *testing.F) {
	sentinel := MustParseAddress("127.0.0.1:8080")
	f.Fuzz(func(t *testing.T, text []byte) {
		// Directly: the same as ParseAddress.
		a := sentinel
		err := a.UnmarshalText(text)
		want, perr := ParseAddress(string(text))
		checkAddressUnmarshal(t, "UnmarshalText", string(text), sentinel, a, err, want, perr)
		set := sentinel
		err = set.Set(string(text))
		checkAddressUnmarshal(t, "Set", string(text), sentinel, set, err, want, perr)

		// The text as a JSON string. json.Marshal turns invalid UTF-8 into
		// U+FFFD; what the Address sees is the string JSON decodes.
		doc, err := json.Marshal(string(text))
		if err != nil {
			t.Fatal(err)
		}
		var str string
		if err := json.Unmarshal(doc, &str); err != nil {
			t.Fatalf("json.Unmarshal(%s) into a string: %v", doc, err)
		}
		j := sentinel
		err = json.Unmarshal(doc, &j)
		want, perr = ParseAddress(str)
		checkAddressUnmarshal(t, "json.Unmarshal of a JSON string", str, sentinel, j, err, want, perr)

		// The text as a whole JSON document: any JSON value, or none.
		r := sentinel
		rerr := json.Unmarshal(text, &r)
		var s string
		switch {
		case json.Unmarshal(text, &s) == nil && !isJSONNull(text):
			want, perr = ParseAddress(s)
			checkAddressUnmarshal(t, "json.Unmarshal", s, sentinel, r, rerr, want, perr)
		case rerr != nil:
			if r != sentinel {
				t.Errorf("a failed json.Unmarshal(%q) changed the Address from %v to %#v: %v", text, sentinel, r, rerr)
			}
		case r != sentinel:
			t.Errorf("json.Unmarshal(%q), which is not a JSON string, changed the Address from %v to %#v", text, sentinel, r)
		}

		// A field of a config struct, as a config file has it.
		if json.Valid(text) {
			cfg := struct {
				Listen Address `json:"listen"`
			}{sentinel}
			doc := append(append([]byte(`{"listen":`), text...), '}')
			if err := json.Unmarshal(doc, &cfg); err != nil && cfg.Listen != sentinel {
				t.Errorf("a failed json.Unmarshal(%s) changed the field from %v to %#v: %v", doc, sentinel, cfg.Listen, err)
			} else if err == nil {
				checkAddressJSONRoundTrip(t, cfg.Listen)
			}
		}

		// AddressList takes an array of strings or one string.
		list := AddressList{sentinel}
		if err := json.Unmarshal(text, &list); err != nil {
			if len(list) != 1 || list[0] != sentinel {
				t.Errorf("a failed json.Unmarshal(%q) changed the AddressList to %v: %v", text, list, err)
			}
			return
		}
		utf8Text := true
		for _, a := range list {
			if a == (Address{}) {
				// A JSON null, as the document or as an element, gives a
				// list holding the zero Address (a library bug; see
				// TestHostileAddressListJSONNull). Nothing else may.
				if !bytes.Contains(text, []byte("null")) {
					t.Errorf("json.Unmarshal(%q) gave an AddressList holding the zero Address: %#v", text, list)
				}
				return
			}
			utf8Text = utf8Text && utf8.ValidString(a.String())
		}
		if !utf8Text {
			return // see checkAddressJSONRoundTrip
		}
		out, err := json.Marshal(list)
		if err != nil {
			t.Fatalf("json.Marshal(%v): %v", list, err)
		}
		var back AddressList
		if err := json.Unmarshal(out, &back); err != nil || len(back) != len(list) {
			t.Fatalf("AddressList %v marshals to %s, which unmarshals to %v, %v", list, out, back, err)
		}
		for i := range list {
			if back[i] != list[i] {
				t.Errorf("AddressList %#v marshals to %s, which unmarshals to %#v", list, out, back)
			}
		}
	})
}

// isJSONNull reports whether text is the JSON null, with any white space.
func isJSONNull(text []byte) bool {
	return strings.Trim(string(text), " \t\r\n") == "null"
}

// checkAddressUnmarshal checks the result got, err of unmarshalling input
// (how says how) into a copy of sentinel against ParseAddress's want, perr.
func checkAddressUnmarshal(t *testing.T, how, input string, sentinel, got Address, err error, want Address, perr error) {
	t.Helper()
	if (err == nil) != (perr == nil) {
		t.Fatalf("%s of %q: err = %v, but ParseAddress err = %v", how, input, err, perr)
	}
	if err != nil {
		if got != sentinel {
			t.Errorf("a failed %s of %q changed the Address from %v to %#v", how, input, sentinel, got)
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Input != input {
			t.Errorf("%s of %q: error %v is not a *ParseError quoting the input", how, input, err)
		}
		return
	}
	if got != want {
		t.Fatalf("%s of %q = %#v, ParseAddress = %#v", how, input, got, want)
	}
	text, err := got.MarshalText()
	if err != nil || string(text) != got.String() {
		t.Fatalf("MarshalText() of %#v = %q, %v; want %q", got, text, err, got.String())
	}
	back := sentinel
	if err := back.UnmarshalText(text); err != nil || back != got {
		t.Fatalf("%s of %q = %#v, whose text %q unmarshals to %#v, %v", how, input, got, text, back, err)
	}
	checkAddressJSONRoundTrip(t, got)
}

// checkAddressJSONRoundTrip checks that a survives json.Marshal and
// json.Unmarshal. encoding/json replaces invalid UTF-8 with U+FFFD, so an
// Address whose text is not UTF-8 (a UNIX path or abstract name of other
// bytes, which the kernel takes) comes back as another Address: that is
// not checked here (see TestHostileAddressJSONNotUTF8).
func checkAddressJSONRoundTrip(t *testing.T, a Address) {
	t.Helper()
	if !utf8.ValidString(a.String()) {
		return
	}
	out, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", a, err)
	}
	var back Address
	if err := json.Unmarshal(out, &back); err != nil || back != a {
		t.Fatalf("%#v marshals to JSON %s, which unmarshals to %#v, %v", a, out, back, err)
	}
}

// FuzzUnixMode fuzzes the text and TOML forms of the --unix-listen-chmod
// option: UnmarshalText, Set, ParseUnixMode and UnmarshalTOML with a
// string, and UnmarshalTOML with an integer (TOML's 0o660).
func FuzzUnixMode(f *testing.F) {
	const sentinel = UnixMode(0o640)
	f.Fuzz(func(t *testing.T, s string, n int64) {
		m := sentinel
		err := m.UnmarshalText([]byte(s))
		checkUnixMode(t, "UnmarshalText", strconv.Quote(s), sentinel, m, err)
		if err != nil {
			if prefix := "anylisten: invalid UNIX socket mode " + strconv.Quote(s) + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("UnmarshalText(%q) error %q does not start with %q", s, err, prefix)
			}
		} else if s == "" {
			if m != 0 {
				t.Errorf("UnmarshalText(\"\") = %#o, want 0 (unset)", m)
			}
		} else if m < 1 || m > 0o777 {
			t.Errorf("UnmarshalText(%q) = %#o, outside 0001 to 0777", s, m)
		}
		for _, other := range []struct {
			how string
			f   func(*UnixMode) error
		}{
			{"Set", func(p *UnixMode) error { return p.Set(s) }},
			{"UnmarshalTOML(string)", func(p *UnixMode) error { return p.UnmarshalTOML(s) }},
		} {
			o := sentinel
			oerr := other.f(&o)
			if (oerr == nil) != (err == nil) || o != m {
				t.Errorf("%s(%q) = %#o, %v; UnmarshalText gave %#o, %v", other.how, s, o, oerr, m, err)
			}
		}
		if p, perr := ParseUnixMode(s); s != "" && ((perr == nil) != (err == nil) || perr == nil && p != m) {
			t.Errorf("ParseUnixMode(%q) = %#o, %v; UnmarshalText gave %#o, %v", s, p, perr, m, err)
		}

		m = sentinel
		err = m.UnmarshalTOML(n)
		checkUnixMode(t, "UnmarshalTOML", strconv.FormatInt(n, 10), sentinel, m, err)
		if inRange := 1 <= n && n <= 0o777; (err == nil) != inRange {
			t.Errorf("UnmarshalTOML(int64 %d) = %#o, %v; want it accepted exactly for 1 to 0o777", n, m, err)
		}
		if err == nil && m != UnixMode(n) {
			t.Errorf("UnmarshalTOML(int64 %d) = %#o, want the integer itself", n, m)
		}
		// Other TOML types are an error that changes nothing.
		for _, v := range []any{float64(n), n != 0, []any{n}, nil} {
			m = sentinel
			if err := m.UnmarshalTOML(v); err == nil || m != sentinel {
				t.Errorf("UnmarshalTOML(%T %v) = %#o, %v; want an error and no change", v, v, m, err)
			}
		}
	})
}

// checkUnixMode checks the result m, err of unmarshalling input into a
// copy of sentinel: unchanged on error, else within 0 to 0777 and
// round-tripping through String and MarshalText.
func checkUnixMode(t *testing.T, how, input string, sentinel, m UnixMode, err error) {
	t.Helper()
	if err != nil {
		if m != sentinel {
			t.Errorf("a failed %s(%s) changed the mode from %#o to %#o: %v", how, input, sentinel, m, err)
		}
		return
	}
	if m > 0o777 {
		t.Fatalf("%s(%s) = %#o, beyond 0777", how, input, m)
	}
	if err := (&Options{UnixListenChmod: m}).Validate(); err != nil {
		t.Errorf("%s(%s) = %#o, which Validate rejects: %v", how, input, m, err)
	}
	text, err := m.MarshalText()
	if err != nil || string(text) != m.String() {
		t.Fatalf("MarshalText() of %#o = %q, %v; want %q", m, text, err, m.String())
	}
	back := sentinel
	if err := back.UnmarshalText(text); err != nil || back != m {
		t.Fatalf("%s(%s) = %#o, whose text %q unmarshals to %#o, %v", how, input, m, text, back, err)
	}
	if back.String() != string(text) {
		t.Errorf("String is not stable: %q then %q", text, back.String())
	}
	if m != 0 {
		if p, err := ParseUnixMode(string(text)); err != nil || p != m {
			t.Errorf("ParseUnixMode(%q) = %#o, %v; want %#o", text, p, err, m)
		}
	}
}
