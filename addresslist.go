package anylisten

import (
	"encoding/json"
	"fmt"
	"strings"
)

// AddressList is a list of listen addresses, for servers that listen on
// several at once (see ListenAll).
//
// As a flag.Value, each Set appends one address, so that
// flag.Var(&list, "listen", ...) takes --listen repeatedly; a default
// belongs after flag.Parse, for when the list is still empty. In a JSON
// config file (JSON, or TOML with github.com/BurntSushi/toml) it is an
// array of address strings, or one string; its UnmarshalText takes one
// address and makes it the whole list.
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

// UnmarshalJSON takes an array of address strings, or one string.
// (Without it, encoding/json would refuse an array for a type that has
// UnmarshalText.)
func (l *AddressList) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil // as encoding/json does for a slice
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
