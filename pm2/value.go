package pm2

// The ecosystem file is read into a small tree of values that remembers the
// line each value and key starts on, so that a wrong type or value can be
// reported at its line. JSON is walked token by token with encoding/json;
// YAML is turned into JSON by sigs.k8s.io/yaml first (its syntax errors
// carry a line; its values then do not); what node prints of a .js file
// has no lines of the file either.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

type kind int

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// value is one JSON value of the file.
type value struct {
	kind kind
	line int // 0 when unknown
	b    bool
	s    string // a string, or a number as written
	arr  []*value
	obj  []member // in file order, duplicates kept
}

// member is one key of an object.
type member struct {
	key  string
	line int
	val  *value
}

// typeName says what v is, for messages: "a string", "an object", ...
func (v *value) typeName() string {
	switch v.kind {
	case kNull:
		return "null"
	case kBool:
		return "a boolean"
	case kNumber:
		return "a number"
	case kString:
		return "a string"
	case kArray:
		return "a list"
	}
	return "an object"
}

// show returns v for a message: a scalar as written, in JSON syntax,
// shortened; a list or object by its type.
func (v *value) show() string {
	switch v.kind {
	case kNull:
		return "null"
	case kBool:
		return strconv.FormatBool(v.b)
	case kNumber:
		return shorten(v.s)
	case kString:
		return strconv.Quote(shorten(v.s))
	}
	return v.typeName()
}

// shorten cuts s to about 60 bytes at a rune boundary.
func shorten(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max - 3
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

// get returns the last member named key of an object, as JS keeps the
// last of duplicate keys, or nil.
func (v *value) get(key string) *member {
	if v == nil || v.kind != kObject {
		return nil
	}
	for i := len(v.obj) - 1; i >= 0; i-- {
		if v.obj[i].key == key {
			return &v.obj[i]
		}
	}
	return nil
}

// truthy reports how JavaScript reads v in a condition.
func (v *value) truthy() bool {
	switch v.kind {
	case kNull:
		return false
	case kBool:
		return v.b
	case kNumber:
		f, err := strconv.ParseFloat(v.s, 64)
		return err != nil || f != 0
	case kString:
		return v.s != ""
	}
	return true
}

// maxDepth bounds the nesting of the file; ecosystem files nest three or
// four levels deep.
const maxDepth = 200

// lineIndex maps byte offsets of data to 1-based lines.
type lineIndex []int // offsets where each line starts

func newLineIndex(data []byte) lineIndex {
	idx := lineIndex{0}
	for i, c := range data {
		if c == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// at returns the line of the byte at off.
func (l lineIndex) at(off int64) int {
	return sort.Search(len(l), func(i int) bool { return int64(l[i]) > off })
}

// decodeJSON reads data as JSON. Lines are set when lines is true; the
// error is an *Error at the line of the problem.
func decodeJSON(data []byte, file string, lines bool) (*value, error) {
	idx := newLineIndex(data)
	lineAt := func(off int64) int {
		if !lines {
			return 0
		}
		return idx.at(max(off, 0))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int) (*value, error)
	walk = func(depth int) (*value, error) {
		if depth > maxDepth {
			return nil, &Error{File: file, Line: lineAt(dec.InputOffset()), Msg: fmt.Sprintf("nested more than %d levels deep", maxDepth)}
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		line := lineAt(dec.InputOffset() - 1)
		switch t := tok.(type) {
		case json.Delim:
			v := &value{kind: kArray, line: line}
			if t == '{' {
				v.kind = kObject
			}
			for dec.More() {
				if v.kind == kObject {
					kt, err := dec.Token()
					if err != nil {
						return nil, err
					}
					key, _ := kt.(string)
					kline := lineAt(dec.InputOffset() - 1)
					val, err := walk(depth + 1)
					if err != nil {
						return nil, err
					}
					v.obj = append(v.obj, member{key: key, line: kline, val: val})
					continue
				}
				val, err := walk(depth + 1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, val)
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, err
			}
			return v, nil
		case string:
			return &value{kind: kString, s: t, line: line}, nil
		case json.Number:
			return &value{kind: kNumber, s: string(t), line: line}, nil
		case bool:
			return &value{kind: kBool, b: t, line: line}, nil
		}
		return &value{kind: kNull, line: line}, nil
	}
	fail := func(err error) error {
		var e *Error
		var se *json.SyntaxError
		switch {
		case errors.As(err, &e):
			return e
		case errors.As(err, &se):
			// Offset is that of the byte found wrong.
			off := min(max(se.Offset, 0), int64(len(data))-1)
			return &Error{File: file, Line: lineAt(off), Msg: fmt.Sprintf("not valid JSON: %s%s", se.Error(), column(data, idx, off, lines))}
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return &Error{File: file, Line: lineAt(int64(len(data)) - 1), Msg: "not valid JSON: the file ends inside a value (a { [ or \" not closed)"}
		}
		return &Error{File: file, Msg: "not valid JSON: " + err.Error()}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "the file is empty; want {\"apps\": [{\"name\": \"web\", \"script\": \"server.js\"}]}"}
	}
	v, err := walk(0)
	if err != nil {
		return nil, fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, &Error{File: file, Line: lineAt(dec.InputOffset() - 1), Msg: "not valid JSON: more after the end of the top-level value"}
		}
		return nil, fail(err)
	}
	return v, nil
}

// column returns " (column N)" for the byte at off, or "".
func column(data []byte, idx lineIndex, off int64, lines bool) string {
	if !lines || off < 0 || off >= int64(len(data)) {
		return ""
	}
	start := idx[idx.at(off)-1]
	return fmt.Sprintf(" (column %d)", len([]rune(string(data[start:off])))+1)
}

// yamlLine finds "line N: " in a YAML error.
var yamlLine = regexp.MustCompile(`line (\d+): `)

// decodeYAML reads data as YAML, as PM2 does for .yml and .yaml files.
func decodeYAML(data []byte, file string) (*value, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "the file is empty; want apps: with a list of apps, each with a script"}
	}
	js, err := yamlToJSON(data)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: ")
		line := 0
		if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
			line, _ = strconv.Atoi(msg[m[2]:m[3]])
			msg = msg[:m[0]] + msg[m[1]:]
		}
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
		return nil, &Error{File: file, Line: line, Msg: "not valid YAML: " + strings.ReplaceAll(msg, "\n", " ")}
	}
	return decodeJSON(js, file, false)
}

// yamlToJSON is sigs.k8s.io/yaml's conversion, which must not take the
// importer down whatever the input.
func yamlToJSON(data []byte) (js []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			js, err = nil, fmt.Errorf("cannot read it (%v)", r)
		}
	}()
	return yaml.YAMLToJSON(data)
}
