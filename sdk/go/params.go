package sluice

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Param is one stage parameter from the pipeline file, as text.
type Param struct {
	Name  string
	Value string
}

// Params are the parameters a stage was configured with.
type Params struct {
	entries []Param
}

// NewParams builds parameters from (name, value) pairs, in order.
func NewParams(pairs ...Param) *Params {
	return &Params{entries: append([]Param(nil), pairs...)}
}

// Get returns the value of name and whether it was set.
func (p *Params) Get(name string) (string, bool) {
	for _, e := range p.entries {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// Required returns the value of name, or an error saying it is required.
func (p *Params) Required(name string) (string, error) {
	if v, ok := p.Get(name); ok {
		return v, nil
	}
	return "", fmt.Errorf("parameter `%s` is required", name)
}

// BoolOr returns name parsed as `true`/`false`, or def when it is not set.
func (p *Params) BoolOr(name string, def bool) (bool, error) {
	v, ok := p.Get(name)
	switch {
	case !ok:
		return def, nil
	case v == "true":
		return true, nil
	case v == "false":
		return false, nil
	}
	return false, fmt.Errorf("parameter `%s`: expected `true` or `false`, found `%s`", name, v)
}

// JSON decodes name as JSON into out (lists and maps arrive this way); it
// reports whether the parameter was set.
func (p *Params) JSON(name string, out any) (bool, error) {
	v, ok := p.Get(name)
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal([]byte(v), out); err != nil {
		return true, fmt.Errorf("parameter `%s`: expected JSON (%v)", name, err)
	}
	return true, nil
}

// Only fails when a parameter outside allowed is set, naming the allowed ones,
// so a typo fails the deployment instead of being ignored.
func (p *Params) Only(allowed ...string) error {
	for _, e := range p.entries {
		found := false
		for _, a := range allowed {
			if a == e.Name {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("unknown parameter `%s`; allowed: %s", e.Name, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// All returns every parameter in the order given.
func (p *Params) All() []Param {
	return append([]Param(nil), p.entries...)
}
