// The `normalize` transform (see ../SPEC.md) in Go: masks `email`, turns
// `price` into integer `price_cents` by currency, drops `aud`, and emits one
// event per element of `items`.
package main

import (
	"encoding/json"
	"math"
	"strings"
	"unicode/utf8"

	sluice "sluice.dev/sdk"
)

type normalize struct{}

// New builds the transform; it takes no parameters.
func New(params *sluice.Params) (sluice.Transform, error) {
	if err := params.Only(); err != nil {
		return nil, err
	}
	return normalize{}, nil
}

func factor(currency string) (float64, bool) {
	switch currency {
	case "usd", "eur", "gbp", "brl":
		return 100, true
	case "jpy":
		return 1, true
	}
	return 0, false
}

func mask(email string) string {
	at := strings.LastIndexByte(email, '@')
	if email == "" || at < 0 {
		return "***"
	}
	_, size := utf8.DecodeRuneInString(email)
	return email[:size] + "***@" + email[at+1:]
}

func (normalize) Process(ev *sluice.Event, out *sluice.Emitter) error {
	if ev.IsTombstone() {
		out.Forward()
		return nil
	}
	obj, err := ev.JSONObject()
	if err != nil {
		return err
	}
	c, ok := obj["currency"].(string)
	if !ok {
		return sluice.Reject("currency must be a string")
	}
	currency := strings.ToLower(c)
	if currency == "aud" {
		return nil
	}
	f, ok := factor(currency)
	if !ok {
		return sluice.Reject("unknown currency %s", currency)
	}
	num, ok := obj["price"].(json.Number)
	if !ok {
		return sluice.Reject("price must be a non-negative number")
	}
	price, err := num.Float64()
	if err != nil || !(price >= 0) {
		return sluice.Reject("price must be a non-negative number")
	}
	delete(obj, "price")
	// The explicit conversion forbids a fused multiply-add: IEEE-754 double
	// rounding after each step, as the spec requires.
	obj["price_cents"] = int64(math.Floor(float64(price*f) + 0.5))
	obj["currency"] = strings.ToUpper(currency)
	if email, ok := obj["email"].(string); ok {
		obj["email"] = mask(email)
	}
	if items, ok := obj["items"].([]any); ok {
		delete(obj, "items")
		for i, item := range items {
			one := make(map[string]any, len(obj)+2)
			for k, v := range obj {
				one[k] = v
			}
			one["item"] = item
			one["item_index"] = i
			out.JSON(one)
		}
		return nil
	}
	out.JSON(obj)
	return nil
}

func init() {
	sluice.Export(sluice.Info{
		Name:        "normalize",
		Version:     "0.1.0",
		Description: "The reference normalize transform (examples/plugins/SPEC.md), in Go",
	}, New)
}

func main() {}
