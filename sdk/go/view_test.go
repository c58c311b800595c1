package sluice

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustView(t *testing.T, s string) *View {
	t.Helper()
	v, err := ParseView([]byte(s))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

func text(r Raw, ok bool) string {
	if !ok {
		return "<missing>"
	}
	return r.Text()
}

func TestViewReadsByNameAndPathLastDuplicateWins(t *testing.T) {
	v := mustView(t, `{"a":1,"b":{"c":[10,{"d":"x\u00e9"}],"c":{"e":true}},"a":9007199254740993, "p":1.50 }`)
	if !v.IsObject() || v.Len() != 4 {
		t.Fatalf("object with 4 fields, got %v %d", v.IsObject(), v.Len())
	}
	if got := text(v.Get("a")); got != "9007199254740993" {
		t.Errorf("a: %s", got)
	}
	a, _ := v.Get("a")
	if n, ok := a.Uint64(); !ok || n != 9007199254740993 {
		t.Errorf("a as uint64: %d %v", n, ok)
	}
	p, _ := v.Get("p")
	if p.Text() != "1.50" {
		t.Errorf("p: %s", p.Text())
	}
	if f, ok := p.Float64(); !ok || f != 1.5 {
		t.Errorf("p as float: %v", f)
	}
	if _, ok := p.Int64(); ok {
		t.Error("1.50 read as an integer")
	}
	e, _ := v.Path("b.c.e")
	if b, ok := e.Bool(); !ok || !b {
		t.Error("b.c.e: the second c should win")
	}
	if got := text(v.Path("b.c.0")); got != "<missing>" {
		t.Errorf("b.c.0: %s", got)
	}
	arr := mustView(t, `[10,{"d":"x\u00e9"}]`)
	d, _ := arr.Path("1.d")
	if s, ok := d.Str(); !ok || s != "xé" || d.Text() != `"x\u00e9"` {
		t.Errorf("1.d: %q %s", s, d.Text())
	}
	var kinds []Kind
	arr.Root().Items(func(r Raw) bool { kinds = append(kinds, r.Kind()); return true })
	if !reflect.DeepEqual(kinds, []Kind{KindNumber, KindObject}) {
		t.Errorf("kinds %v", kinds)
	}
	esc := mustView(t, `{"caf\u00e9":1,"café":2,"q\"":3}`)
	if got := text(esc.Get("café")); got != "2" {
		t.Errorf("café: %s", got)
	}
	if got := text(esc.Get(`q"`)); got != "3" {
		t.Errorf(`q": %s`, got)
	}
	b, _ := v.Get("b")
	tree, err := b.Tree()
	if err != nil || !reflect.DeepEqual(tree, map[string]any{"c": map[string]any{"e": true}}) {
		t.Errorf("tree %v %v", tree, err)
	}
}

func TestViewRefusesHostileInputWithAReason(t *testing.T) {
	deep := MaxDepth + 1
	cases := []struct{ in, msg string }{
		{``, "EOF while parsing a value"},
		{`{"a":`, "EOF while parsing a value"},
		{`{"a":1`, "EOF while parsing an object"},
		{`{"a":"x`, "EOF while parsing a string"},
		{`[1,2`, "EOF while parsing a list"},
		{`{"a":1}x`, "trailing characters"},
		{`{a:1}`, "key must be a string"},
		{`[01]`, "expected `,` or `]`"},
		{`[1.]`, "invalid number"},
		{`-`, "invalid number"},
		{`"\x"`, "invalid escape"},
		{`"\ud800"`, "lone leading surrogate in hex escape"},
		{`"\udc00"`, "lone trailing surrogate in hex escape"},
		{"\"a\nb\"", "control character in string"},
		{`tru`, "expected a value"},
		{strings.Repeat("[", deep) + strings.Repeat("]", deep), "recursion limit exceeded"},
		{`{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, "recursion limit exceeded"},
		{strings.Repeat("[", 1000000), "recursion limit exceeded"},
		{"\"\xff\"", "invalid UTF-8"},
		{"\"\xc0\xaf\"", "invalid UTF-8"},
		{"\"\xed\xa0\x80\"", "invalid UTF-8"},
		{"\"\xe2\x82\"", "invalid UTF-8"},
		{"\"\xf4\x90\x80\x80\"", "invalid UTF-8"},
	}
	for _, c := range cases {
		_, err := ParseView([]byte(c.in))
		var je *JSONError
		if !errors.As(err, &je) || je.Message != c.msg {
			t.Errorf("%.20q: got %v, want %s", c.in, err, c.msg)
		}
	}
	mustView(t, strings.Repeat("[", MaxDepth)+strings.Repeat("]", MaxDepth))
	huge := "1" + strings.Repeat("0", 400)
	n, _ := mustView(t, `{"n":`+huge+`}`).Get("n")
	if n.Text() != huge {
		t.Error("a huge number lost its text")
	}
	if _, ok := n.Uint64(); ok {
		t.Error("10^400 read as a uint64")
	}
}

type splice struct{}

func (splice) Process(ev *Event, out *Emitter) error {
	v, err := ev.View()
	if err != nil {
		return err
	}
	if !v.IsObject() {
		return Reject("expected a JSON object")
	}
	w := NewObjectWriter(nil)
	w.CopyFrom(v, []string{"drop"}, map[string]string{"ts": "time"})
	w.Value("big", uint64(18446744073709551615))
	w.Value(`new "q"`, map[string]any{"b": 1, "a": []any{true}})
	inner := w.Object("nested")
	id, _ := v.Get("id")
	inner.Raw("copy", id)
	w.EndObject(inner)
	buf, err := w.Finish()
	if err != nil {
		return err
	}
	out.Value(buf)
	return nil
}

func TestEventViewAndWriterSpliceRawSlices(t *testing.T) {
	res, err := Run(func(*Params) (Transform, error) { return splice{}, nil }, nil, []string{
		`{"id":9007199254740993,"drop":1,"ts":"2020","p":1.50,"id":18446744073709551615}`,
		"{\"\xff\":1}",
		"[1,",
		"[1]",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"time":"2020","p":1.50,"id":18446744073709551615,"big":18446744073709551615,"new \"q\"":{"a":[true],"b":1},"nested":{"copy":18446744073709551615}}`}
	if got := res.Values(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	var reasons []string
	for _, r := range res.Rejected() {
		reasons = append(reasons, r.Reason)
	}
	wantReasons := []string{
		"value is not valid JSON: invalid UTF-8 at byte 2",
		"value is not valid JSON: EOF while parsing a value at byte 3",
		"expected a JSON object",
	}
	if !reflect.DeepEqual(reasons, wantReasons) {
		t.Errorf("reasons %q", reasons)
	}
	if b, _ := NewObjectWriter(nil).Finish(); string(b) != "{}" {
		t.Errorf("empty: %s", b)
	}
	if _, err := NewObjectWriter(nil).Value("f", func() {}).Finish(); err == nil {
		t.Error("a func was written")
	}
}

func TestTreeKeeps64BitIntegers(t *testing.T) {
	in := `{"id":9007199254740993,"max":18446744073709551615,"min":-9223372036854775808}`
	v, err := ParseJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got, err := MarshalJSON(v)
	if err != nil || string(got) != in {
		t.Errorf("got %s %v", got, err)
	}
}

func TestViewReuseAllocatesNoTable(t *testing.T) {
	var v View
	data := []byte(`{"a":1,"b":2,"c":3}`)
	if err := v.Reset(data); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := v.Reset(data); err != nil {
			t.Fatal(err)
		}
		if r, ok := v.Get("b"); !ok || r.Text() != "2" {
			t.Fatal("b")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per event", allocs)
	}
}
