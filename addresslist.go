package anylisten

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
)

// AddressList is a list of listen addresses, for servers that listen on
// several at once (see ListenAll).
//
// For a repeatable flag with a default, give the list its default and
// register l.Flag():
//
//	listen := anylisten.AddressList{anylisten.MustParseAddress(":8000")}
//	flag.Var(listen.Flag(), "listen", "listen on `ADDRESS` (repeatable)")
//
// -h shows "(default :8000)", the first --listen replaces the default and
// each further one appends. The *AddressList itself is a flag.Value too,
// one whose every Set appends, to the default as well: use it only for a
// list that starts empty.
//
// In a config file (JSON, or TOML with github.com/BurntSushi/toml) it is
// an array of address strings, or one string, which replaces what the
// list held, its default included; a missing key or a JSON null leaves
// the list as it is, and an empty array empties it. Its UnmarshalText
// takes one address and makes it the whole list. Read the config file
// before parsing the flags, so that a --listen replaces the file's
// addresses rather than the other way round.
type AddressList []Address

// Set parses s with ParseAddress and appends it.
func (l *AddressList) Set(s string) error {
	a, err := ParseAddress(s)
	if err != nil {
		return err
	}
	*l = append(*l, a)
	return nil
}

// Flag returns a flag.Value for a repeatable flag that fills l, taking
// the addresses l holds now as the flag's default: the first Set replaces
// them with its address, and each later Set appends one. A Set with an
// address ParseAddress rejects changes nothing. Register it after giving
// l its default, so that flag.PrintDefaults (-h) shows the default in the
// form of String, as "(default :8000)"; a program run without the flag
// keeps the default. An empty l has no default, and -h shows none.
//
// With github.com/spf13/pflag, add the flag.FlagSet it is registered in
// with AddGoFlagSet. l must not be nil.
func (l *AddressList) Flag() flag.Value { return &addressListFlag{list: l} }

// addressListFlag is the flag.Value of AddressList.Flag.
type addressListFlag struct {
	list *AddressList // nil only in the zero value flag.PrintDefaults makes
	set  bool         // a Set has replaced the default
}

func (f *addressListFlag) String() string {
	if f.list == nil {
		return ""
	}
	return f.list.String()
}

func (f *addressListFlag) Set(s string) error {
	a, err := ParseAddress(s)
	if err != nil {
		return err
	}
	if !f.set {
		// A new array: the default's stays as the caller made it.
		*f.list, f.set = AddressList{a}, true
		return nil
	}
	*f.list = append(*f.list, a)
	return nil
}

// String returns the addresses' canonical forms separated by commas.
func (l AddressList) String() string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// UnmarshalText implements encoding.TextUnmarshaler: text is one address,
// which becomes the whole list. On error l is left unchanged.
func (l *AddressList) UnmarshalText(text []byte) error {
	a, err := ParseAddress(string(text))
	if err != nil {
		return err
	}
	*l = AddressList{a}
	return nil
}

// UnmarshalJSON takes an array of address strings, or one string, which
// replace what l holds. null leaves l as it is, default and all, as is
// the convention for an Unmarshaler. On error l is left unchanged.
// (Without it, encoding/json would refuse an array for a type that has
// UnmarshalText.)
func (l *AddressList) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var one Address
	if err := json.Unmarshal(data, &one); err == nil {
		*l = AddressList{one}
		return nil
	} else if len(data) == 0 || data[0] != '[' {
		return err
	}
	var many []*Address
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	list := make(AddressList, len(many))
	for i, a := range many {
		if a == nil {
			return fmt.Errorf("anylisten: listen address %d of %d is null; want a string", i+1, len(many))
		}
		list[i] = *a
	}
	*l = list
	return nil
}

// UnmarshalTOML takes an array of address strings, or one string, for
// github.com/BurntSushi/toml (which would otherwise hand an array to
// UnmarshalText and fail). On error l is left unchanged.
func (l *AddressList) UnmarshalTOML(v any) error {
	if s, ok := v.(string); ok {
		return l.UnmarshalText([]byte(s))
	}
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("anylisten: listen addresses are a TOML %T; want an array of strings, or one string", v)
	}
	list := make(AddressList, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return fmt.Errorf("anylisten: listen address %v is a TOML %T; want a string", item, item)
		}
		if err := list.Set(s); err != nil {
			return err
		}
	}
	*l = list
	return nil
}
