package anylisten

import (
	"encoding/json"
	"strings"
)

// AddressList is a list of listen addresses, for servers that listen on
// several at once (see ListenAll).
//
// As a flag.Value, each Set appends one address, so that
// flag.Var(&list, "listen", ...) takes --listen repeatedly; a default
// belongs after flag.Parse, for when the list is still empty. In a JSON
// config file it is an array of address strings (or one string); its
// UnmarshalText takes one address and makes it the whole list.
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
	var one Address
	if err := json.Unmarshal(data, &one); err == nil {
		*l = AddressList{one}
		return nil
	} else if len(data) == 0 || data[0] != '[' {
		return err
	}
	var many []Address
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*l = many
	return nil
}
