package sluice

// Zero-copy JSON: read fields of an event value without building a tree, and
// build output objects by splicing the input's raw bytes.
//
// ParseView checks the whole value once (one pass, no allocation except the
// table of top-level fields) and remembers where each top-level field's key
// and value lie. A Raw is the exact text of one value, read on demand
// (Raw.Str, Raw.Int64, Raw.Float64, ...). ObjectWriter writes an object from
// raw slices and new values, so a number or string the plugin does not change
// is copied byte for byte (9007199254740993 stays 9007199254740993, 1.50
// stays 1.50).
//
// The semantics are the Rust SDK's (sluice_sdk::json): RFC 8259 JSON, every
// string checked as UTF-8, nesting capped at MaxDepth so hostile input fails
// with a reason instead of exhausting the stack, and duplicate keys resolved
// to the last occurrence on lookup.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects a view accepts
// (serde_json's limit).
const MaxDepth = 128

// JSONError says why a value is not JSON: what and the byte offset where.
type JSONError struct {
	Offset  int
	Message string
}

func (e *JSONError) Error() string { return fmt.Sprintf("%s at byte %d", e.Message, e.Offset) }

// Kind is the type of a JSON value.
type Kind int

// The kinds of JSON values.
const (
	KindNull Kind = iota
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

type entry struct {
	keyStart, keyEnd, valStart, valEnd int
	escaped                            bool
}

// View is a checked JSON value with its top-level fields indexed (none
// unless the value is an object). It refers to the bytes it was parsed from.
type View struct {
	b      []byte
	fields []entry
}

// ParseView checks data as one JSON value and indexes its top-level fields.
func ParseView(data []byte) (*View, error) {
	v := &View{}
	if err := v.Reset(data); err != nil {
		return nil, err
	}
	return v, nil
}

// Reset re-parses the view over data, reusing its field table, so a plugin
// that keeps one View allocates nothing per event once the table has grown.
func (v *View) Reset(data []byte) error {
	v.b = data
	v.fields = v.fields[:0]
	s := scanner{b: data}
	s.ws()
	var err error
	if s.peek() == '{' {
		err = s.object(1, &v.fields)
	} else {
		err = s.value(0)
	}
	if err != nil {
		v.fields = v.fields[:0]
		return err
	}
	s.ws()
	if s.p != len(data) {
		v.fields = v.fields[:0]
		return s.err("trailing characters")
	}
	return nil
}

// Root is the whole value.
func (v *View) Root() Raw { return Raw(trimWS(v.b)) }

// IsObject reports whether the value is an object.
func (v *View) IsObject() bool { return v.Root().Kind() == KindObject }

// Len is the number of top-level fields, duplicates counted.
func (v *View) Len() int { return len(v.fields) }

// Find returns the index of the last top-level field named name, or -1.
func (v *View) Find(name string) int {
	for i := len(v.fields) - 1; i >= 0; i-- {
		if v.Key(i).Is(name) {
			return i
		}
	}
	return -1
}

// Get returns top-level field name (its last occurrence).
func (v *View) Get(name string) (Raw, bool) {
	i := v.Find(name)
	if i < 0 {
		return nil, false
	}
	return v.Value(i), true
}

// Path returns the value at a dotted path ("a.b.c"; all-digit names index
// arrays). PathOf takes the names as a list.
func (v *View) Path(path string) (Raw, bool) { return v.PathOf(strings.Split(path, ".")...) }

// PathOf returns the value at a path of names from the root.
func (v *View) PathOf(names ...string) (Raw, bool) {
	if len(names) == 0 {
		return v.Root(), true
	}
	var at Raw
	var ok bool
	if v.IsObject() {
		at, ok = v.Get(names[0])
	} else {
		at, ok = v.Root().Member(names[0])
	}
	if !ok {
		return nil, false
	}
	return at.PathOf(names[1:]...)
}

// Key returns the key of top-level field i.
func (v *View) Key(i int) RawKey {
	e := v.fields[i]
	return RawKey{text: v.b[e.keyStart:e.keyEnd], escaped: e.escaped}
}

// Value returns the value of top-level field i.
func (v *View) Value(i int) Raw {
	e := v.fields[i]
	return Raw(v.b[e.valStart:e.valEnd])
}

// RawKey is an object key as written in the input.
type RawKey struct {
	text    []byte
	escaped bool
}

// EscapedText is the key's UTF-8 text between the quotes, still escaped.
func (k RawKey) EscapedText() []byte { return k.text }

// Escaped reports whether the key contains a backslash escape.
func (k RawKey) Escaped() bool { return k.escaped }

// Text is the key unescaped.
func (k RawKey) Text() string {
	if !k.escaped {
		return string(k.text)
	}
	return unescape(k.text)
}

// Is reports whether the key is name.
func (k RawKey) Is(name string) bool {
	if !k.escaped {
		return string(k.text) == name // compiled without a copy
	}
	return unescape(k.text) == name
}

func unescape(text []byte) string {
	quoted := make([]byte, 0, len(text)+2)
	quoted = append(append(append(quoted, '"'), text...), '"')
	var s string
	// Checked text: cannot fail.
	_ = json.Unmarshal(quoted, &s)
	return s
}

// Raw is the exact text of one checked JSON value.
type Raw []byte

// Bytes is the value's JSON text as written (a slice of the input).
func (r Raw) Bytes() []byte { return r }

// Text is the value's JSON text as written.
func (r Raw) Text() string { return string(r) }

// Kind is the value's type.
func (r Raw) Kind() Kind {
	if len(r) == 0 {
		return KindNull
	}
	switch r[0] {
	case '{':
		return KindObject
	case '[':
		return KindArray
	case '"':
		return KindString
	case 't', 'f':
		return KindBool
	case 'n':
		return KindNull
	}
	return KindNumber
}

// IsNull reports whether the value is null.
func (r Raw) IsNull() bool { return len(r) > 0 && r[0] == 'n' }

// Bool returns a boolean's value.
func (r Raw) Bool() (bool, bool) {
	if len(r) == 0 {
		return false, false
	}
	switch r[0] {
	case 't':
		return true, true
	case 'f':
		return false, true
	}
	return false, false
}

// Str returns a string unescaped.
func (r Raw) Str() (string, bool) {
	if r.Kind() != KindString {
		return "", false
	}
	inner := r[1 : len(r)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	return unescape(inner), true
}

// Int64 returns an integer number that fits an int64 (no fraction or exponent).
func (r Raw) Int64() (int64, bool) {
	if r.Kind() != KindNumber {
		return 0, false
	}
	n, err := strconv.ParseInt(string(r), 10, 64)
	return n, err == nil
}

// Uint64 returns an integer number that fits a uint64.
func (r Raw) Uint64() (uint64, bool) {
	if r.Kind() != KindNumber {
		return 0, false
	}
	n, err := strconv.ParseUint(string(r), 10, 64)
	return n, err == nil
}

// Float64 returns a number as a float64 (false beyond the double range).
func (r Raw) Float64() (float64, bool) {
	if r.Kind() != KindNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r), 64)
	return f, err == nil
}

// Number returns a number's exact text as a json.Number.
func (r Raw) Number() (json.Number, bool) {
	if r.Kind() != KindNumber {
		return "", false
	}
	return json.Number(r), true
}

// Tree parses the value into the tree API's types (see ParseJSON).
func (r Raw) Tree() (any, error) { return ParseJSON(r) }

// Get returns member name of an object (its last occurrence).
func (r Raw) Get(name string) (Raw, bool) {
	var found Raw
	ok := false
	r.Entries(func(k RawKey, v Raw) bool {
		if k.Is(name) {
			found, ok = v, true
		}
		return true
	})
	return found, ok
}

// Member returns member name of an object, or item name (all digits) of an array.
func (r Raw) Member(name string) (Raw, bool) {
	switch r.Kind() {
	case KindObject:
		return r.Get(name)
	case KindArray:
		if name == "" {
			return nil, false
		}
		for i := 0; i < len(name); i++ {
			if name[i] < '0' || name[i] > '9' {
				return nil, false
			}
		}
		index, err := strconv.Atoi(name)
		if err != nil {
			return nil, false
		}
		var found Raw
		ok := false
		i := 0
		r.Items(func(item Raw) bool {
			if i == index {
				found, ok = item, true
				return false
			}
			i++
			return true
		})
		return found, ok
	}
	return nil, false
}

// Path returns the value at a dotted path below this one.
func (r Raw) Path(path string) (Raw, bool) { return r.PathOf(strings.Split(path, ".")...) }

// PathOf returns the value at a path of names below this one.
func (r Raw) PathOf(names ...string) (Raw, bool) {
	at := r
	for _, name := range names {
		var ok bool
		if at, ok = at.Member(name); !ok {
			return nil, false
		}
	}
	return at, true
}

// Entries calls f with an object's members in input order until f returns
// false (nothing for other types).
func (r Raw) Entries(f func(RawKey, Raw) bool) {
	if r.Kind() != KindObject {
		return
	}
	b := []byte(r)
	p := 1
	for {
		p = skipWS(b, p)
		if p >= len(b) || b[p] == '}' {
			return
		}
		if b[p] == ',' {
			p = skipWS(b, p+1)
		}
		keyEnd := skipStringChecked(b, p)
		key := RawKey{text: b[p+1 : keyEnd-1], escaped: bytes.IndexByte(b[p+1:keyEnd-1], '\\') >= 0}
		p = skipWS(b, keyEnd)
		p = skipWS(b, p+1) // the colon
		end := skipChecked(b, p)
		if !f(key, Raw(b[p:end])) {
			return
		}
		p = end
	}
}

// Items calls f with an array's items in order until f returns false.
func (r Raw) Items(f func(Raw) bool) {
	if r.Kind() != KindArray {
		return
	}
	b := []byte(r)
	p := 1
	for {
		p = skipWS(b, p)
		if p < len(b) && b[p] == ',' {
			p = skipWS(b, p+1)
		}
		if p >= len(b) || b[p] == ']' {
			return
		}
		end := skipChecked(b, p)
		if !f(Raw(b[p:end])) {
			return
		}
		p = end
	}
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, p int) int {
	for p < len(b) && isWS(b[p]) {
		p++
	}
	return p
}

func trimWS(b []byte) []byte {
	start := skipWS(b, 0)
	end := len(b)
	for end > start && isWS(b[end-1]) {
		end--
	}
	return b[start:end]
}

func skipStringChecked(b []byte, p int) int {
	p++
	for p < len(b) {
		switch b[p] {
		case '"':
			return p + 1
		case '\\':
			p += 2
		default:
			p++
		}
	}
	return len(b)
}

func skipChecked(b []byte, p int) int {
	if p >= len(b) {
		return p
	}
	switch b[p] {
	case '"':
		return skipStringChecked(b, p)
	case '{', '[':
		depth := 0
		for q := p; q < len(b); {
			switch b[q] {
			case '"':
				q = skipStringChecked(b, q)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return q + 1
				}
			}
			q++
		}
		return len(b)
	}
	q := p
	for q < len(b) && b[q] != ',' && b[q] != '}' && b[q] != ']' && !isWS(b[q]) {
		q++
	}
	return q
}

// The validating scanner.
type scanner struct {
	b []byte
	p int
}

func (s *scanner) err(msg string) error { return &JSONError{Offset: s.p, Message: msg} }

func (s *scanner) peek() int {
	if s.p < len(s.b) {
		return int(s.b[s.p])
	}
	return -1
}

func (s *scanner) ws() { s.p = skipWS(s.b, s.p) }

func (s *scanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c < 0:
		return s.err("EOF while parsing a value")
	}
	return s.err("expected a value")
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.p:], []byte(word)) {
		return s.err("expected a value")
	}
	s.p += len(word)
	return nil
}

func (s *scanner) digits() int {
	start := s.p
	for s.p < len(s.b) && s.b[s.p] >= '0' && s.b[s.p] <= '9' {
		s.p++
	}
	return s.p - start
}

func (s *scanner) number() error {
	if s.peek() == '-' {
		s.p++
	}
	switch c := s.peek(); {
	case c == '0':
		s.p++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.err("invalid number")
	}
	if s.peek() == '.' {
		s.p++
		if s.digits() == 0 {
			return s.err("invalid number")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.p++
		if c := s.peek(); c == '+' || c == '-' {
			s.p++
		}
		if s.digits() == 0 {
			return s.err("invalid number")
		}
	}
	return nil
}

func (s *scanner) hex4() (int, error) {
	if s.p+4 > len(s.b) {
		return 0, s.err("EOF while parsing a string")
	}
	n := 0
	for _, d := range s.b[s.p : s.p+4] {
		var v int
		switch {
		case d >= '0' && d <= '9':
			v = int(d - '0')
		case d >= 'a' && d <= 'f':
			v = int(d-'a') + 10
		case d >= 'A' && d <= 'F':
			v = int(d-'A') + 10
		default:
			return 0, s.err("invalid escape")
		}
		n = n*16 + v
	}
	s.p += 4
	return n, nil
}

// str scans a string at `"`; it returns whether the string has an escape.
func (s *scanner) str() (bool, error) {
	b := s.b
	s.p++
	escaped := false
	for {
		p := s.p
		for p < len(b) {
			c := b[p]
			if c < utf8.RuneSelf {
				if c == '"' || c == '\\' || c < 0x20 {
					break
				}
				p++
				continue
			}
			// utf8.DecodeRune refuses overlongs, surrogates and code
			// points above U+10FFFF (Unicode table 3-7), as Rust does.
			r, size := utf8.DecodeRune(b[p:])
			if r == utf8.RuneError && size <= 1 {
				s.p = p
				return false, s.err("invalid UTF-8")
			}
			p += size
		}
		s.p = p
		if p >= len(b) {
			return false, s.err("EOF while parsing a string")
		}
		switch b[p] {
		case '"':
			s.p++
			return escaped, nil
		case '\\':
			escaped = true
			s.p++
			switch c := s.peek(); c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.p++
			case 'u':
				s.p++
				n, err := s.hex4()
				if err != nil {
					return false, err
				}
				if n >= 0xDC00 && n < 0xE000 {
					return false, s.err("lone trailing surrogate in hex escape")
				}
				if n >= 0xD800 && n < 0xDC00 {
					if !bytes.HasPrefix(b[s.p:], []byte(`\u`)) {
						return false, s.err("lone leading surrogate in hex escape")
					}
					s.p += 2
					low, err := s.hex4()
					if err != nil {
						return false, err
					}
					if low < 0xDC00 || low >= 0xE000 {
						return false, s.err("lone leading surrogate in hex escape")
					}
				}
			case -1:
				return false, s.err("EOF while parsing a string")
			default:
				return false, s.err("invalid escape")
			}
		default:
			return false, s.err("control character in string")
		}
	}
}

func (s *scanner) array(depth int) error {
	if depth > MaxDepth {
		return s.err("recursion limit exceeded")
	}
	s.p++
	s.ws()
	if s.peek() == ']' {
		s.p++
		return nil
	}
	for {
		s.ws()
		if err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.p++
		case ']':
			s.p++
			return nil
		case -1:
			return s.err("EOF while parsing a list")
		default:
			return s.err("expected `,` or `]`")
		}
	}
}

func (s *scanner) object(depth int, record *[]entry) error {
	if depth > MaxDepth {
		return s.err("recursion limit exceeded")
	}
	s.p++
	s.ws()
	if s.peek() == '}' {
		s.p++
		return nil
	}
	for {
		s.ws()
		switch s.peek() {
		case '"':
		case -1:
			return s.err("EOF while parsing an object")
		default:
			return s.err("key must be a string")
		}
		keyStart := s.p + 1
		escaped, err := s.str()
		if err != nil {
			return err
		}
		keyEnd := s.p - 1
		s.ws()
		switch s.peek() {
		case ':':
			s.p++
		case -1:
			return s.err("EOF while parsing an object")
		default:
			return s.err("expected `:`")
		}
		s.ws()
		valStart := s.p
		if err := s.value(depth); err != nil {
			return err
		}
		if record != nil {
			*record = append(*record, entry{keyStart, keyEnd, valStart, s.p, escaped})
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.p++
		case '}':
			s.p++
			return nil
		case -1:
			return s.err("EOF while parsing an object")
		default:
			return s.err("expected `,` or `}`")
		}
	}
}

// ObjectWriter appends one JSON object to a byte slice field by field: raw
// slices are copied as they are, new values are serialized (AppendJSON). It
// does not check for duplicate keys; keys come out in the order written.
type ObjectWriter struct {
	buf   []byte
	empty bool
	err   error
}

// NewObjectWriter starts an object at the end of buf (which may be nil).
func NewObjectWriter(buf []byte) *ObjectWriter {
	return &ObjectWriter{buf: append(buf, '{'), empty: true}
}

func (w *ObjectWriter) sep() {
	if !w.empty {
		w.buf = append(w.buf, ',')
	}
	w.empty = false
}

func (w *ObjectWriter) key(name string) {
	w.sep()
	w.buf = appendString(w.buf, name)
	w.buf = append(w.buf, ':')
}

// RawField copies an input field: its key as written and its raw value.
func (w *ObjectWriter) RawField(key RawKey, value Raw) *ObjectWriter {
	w.sep()
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, key.text...)
	w.buf = append(w.buf, '"', ':')
	w.buf = append(w.buf, value...)
	return w
}

// Raw writes name with a raw value copied as it is (a Raw from a view, or
// JSON text the caller vouches for).
func (w *ObjectWriter) Raw(name string, value Raw) *ObjectWriter {
	w.key(name)
	w.buf = append(w.buf, value...)
	return w
}

// Value writes name with value serialized by AppendJSON. An unsupported
// value is remembered and returned by Finish.
func (w *ObjectWriter) Value(name string, value any) *ObjectWriter {
	w.key(name)
	buf, err := AppendJSON(w.buf, value)
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		w.buf = append(w.buf, "null"...)
		return w
	}
	w.buf = buf
	return w
}

// Object writes name and starts an object as its value; call EndObject
// before writing on to w.
func (w *ObjectWriter) Object(name string) *ObjectWriter {
	w.key(name)
	w.buf = append(w.buf, '{')
	return &ObjectWriter{buf: w.buf, empty: true}
}

// EndObject closes a nested writer returned by Object and continues w after it.
func (w *ObjectWriter) EndObject(inner *ObjectWriter) *ObjectWriter {
	w.buf = append(inner.buf, '}')
	if inner.err != nil && w.err == nil {
		w.err = inner.err
	}
	return w
}

// CopyFrom copies v's top-level fields in input order (the last occurrence
// of a duplicated key), except those in drop, renaming by rename (old → new;
// nil for none).
func (w *ObjectWriter) CopyFrom(v *View, drop []string, rename map[string]string) *ObjectWriter {
	n := v.Len()
	keep := make([]bool, n)
	for i := n - 1; i >= 0; i-- {
		key := v.Key(i)
		name := key.Text()
		if v.Find(name) != i {
			continue // an earlier duplicate
		}
		dropped := false
		for _, d := range drop {
			if d == name {
				dropped = true
				break
			}
		}
		keep[i] = !dropped
	}
	for i := 0; i < n; i++ {
		if !keep[i] {
			continue
		}
		key := v.Key(i)
		if to, ok := rename[key.Text()]; ok {
			w.Raw(to, v.Value(i))
		} else {
			w.RawField(key, v.Value(i))
		}
	}
	return w
}

// Finish closes the object and returns the buffer with it appended, or the
// first error of a Value call.
func (w *ObjectWriter) Finish() ([]byte, error) {
	w.buf = append(w.buf, '}')
	return w.buf, w.err
}

// View checks the value and returns a zero-copy view of it (fields by name
// or path, the exact text of each value, no tree built). A value that is not
// JSON is an error naming the reason, which rejects the event if returned
// from Process. A tombstone returns (nil, nil).
func (e *Event) View() (*View, error) {
	if !e.raw.HasValue {
		return nil, nil
	}
	v, err := ParseView(e.Value())
	if err != nil {
		return nil, fmt.Errorf("value is not valid JSON: %v", err)
	}
	return v, nil
}
