package configs

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks yaml nodes of one file, collecting every problem.
type decoder struct {
	file   string
	getenv func(string) (string, bool)
	errs   *[]*Error
	warns  *[]*Error // problems that do not stop the configuration loading

	matches []matchRef  // rule matches, checked against the cameras
	cams    []cameraRef // decoded cameras, in cfg.Cameras order
	devs    []deviceRef // decoded devices, in cfg.Devices order
	// receivers are the notify receiver IDs routes and rules name,
	// checked once all receivers are known.
	receivers []receiverRef
}

// at records a problem at node n.
func (d *decoder) at(n *yaml.Node, path, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	*d.errs = append(*d.errs, &Error{File: d.file, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// warn records a warning at node n.
func (d *decoder) warn(n *yaml.Node, path, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	*d.warns = append(*d.warns, &Error{File: d.file, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// wrap records an error at node n, keeping err for errors.Is.
func (d *decoder) wrap(n *yaml.Node, path, msg string, err error) {
	d.at(n, path, "%s", msg)
	(*d.errs)[len(*d.errs)-1].Err = err
}

// parseFile parses data into its root node. A file without any YAML
// document (empty, whitespace or comments only) is an error: truncating a
// file by mistake must not read as "remove everything".
func (d *decoder) parseFile(data []byte) *yaml.Node {
	var doc yaml.Node
	if len(bytes.TrimSpace(data)) == 0 {
		data = nil // a tab alone is not a syntax error but an empty file
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, col, msg := yamlErrorAt(data, err)
		*d.errs = append(*d.errs, &Error{File: d.file, Line: line, Column: col, Msg: msg, Err: err})
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		*d.errs = append(*d.errs, &Error{File: d.file, Line: 1, Column: 1, Err: ErrEmptyFile,
			Msg: "the file is empty; write the settings it should hold (an empty file is never a valid configuration)"})
		return nil
	}
	return doc.Content[0]
}

// maxRelocate bounds the files whose syntax errors are located by parsing
// prefixes; larger files keep the parser's line.
const maxRelocate = 1 << 20

// yamlErrorAt places a syntax error. The parser reports the line where the
// enclosing block started ("yaml: line 18: did not find expected key" for a
// bad indent on line 22) and no column; the line where the problem shows is
// the first one whose prefix of the file fails with the same error, and
// the column is that line's first tab in its indentation or its first
// other character. Prefixes that end before the problem parse or fail
// differently, and every longer one fails the same, so a binary search
// finds the line in a few parses.
func yamlErrorAt(data []byte, err error) (line, col int, msg string) {
	line, msg = yamlErrorLine(err)
	col = 1
	if len(data) > maxRelocate {
		return line, col, msg
	}
	lines := strings.SplitAfter(string(data), "\n")
	ends := make([]int, len(lines)) // ends[i]: length of the prefix through line i+1
	n := 0
	for i, l := range lines {
		n += len(l)
		ends[i] = n
	}
	same := func(i int) bool {
		var doc yaml.Node
		perr := yaml.Unmarshal(data[:ends[i]], &doc)
		return perr != nil && perr.Error() == err.Error()
	}
	lo := min(line-1, len(lines)-1)
	i := lo + sort.Search(len(lines)-lo, func(k int) bool { return same(lo + k) })
	if i >= len(lines) || !same(i) {
		return line, col, msg
	}
	line = i + 1
	text := lines[i]
	indent := len(text) - len(strings.TrimLeft(text, " \t"))
	if t := strings.IndexByte(text[:indent], '\t'); t >= 0 {
		col = t + 1
	} else {
		col = indent + 1
	}
	return line, col, msg
}

// yamlErrorLine takes "yaml: line 3: did not find expected key" apart.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	rest, ok := strings.CutPrefix(msg, "yaml: line ")
	if !ok {
		return 1, msg
	}
	num, text, ok := strings.Cut(rest, ": ")
	line, perr := strconv.Atoi(num)
	if !ok || perr != nil || line < 1 {
		return 1, msg
	}
	return line, "yaml: " + text
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type field struct {
	key    string
	decode func(v *yaml.Node, path string)
}

// object decodes a mapping: each key must be one of fields and appear
// once. Merge keys (<<) are followed. It returns the keys that were set
// (to a non-null value), with their value nodes.
func (d *decoder) object(n *yaml.Node, path string, fields []field) map[string]*yaml.Node {
	n = resolve(n)
	set := map[string]*yaml.Node{}
	if isNull(n) {
		return set
	}
	if n.Kind != yaml.MappingNode {
		d.at(n, path, "expected a mapping, got %s", kindName(n))
		return set
	}
	seen := map[string]*yaml.Node{}
	var pairs [][2]*yaml.Node
	d.pairs(n, path, seen, map[*yaml.Node]bool{n: true}, &pairs, 0)
	for _, p := range pairs {
		k, v := p[0], p[1]
		i := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if i < 0 {
			d.at(k, join(path, k.Value), "unknown key%s", suggest(k.Value, fields))
			continue
		}
		v = resolve(v)
		if isNull(v) {
			continue
		}
		set[k.Value] = v
		fields[i].decode(v, join(path, k.Value))
	}
	return set
}

// pairs lists a mapping's key/value pairs, explicit keys first and merged
// ones after, reporting duplicates and non-string keys.
// Each mapping is merged at most once, so aliases cannot make the walk
// grow exponentially.
func (d *decoder) pairs(n *yaml.Node, path string, seen map[string]*yaml.Node, merged map[*yaml.Node]bool, out *[][2]*yaml.Node, depth int) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.at(k, path, "keys must be strings, got %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if depth == 0 {
				d.at(k, join(path, k.Value), "duplicate key (first at line %d)", first.Line)
			}
			continue
		}
		seen[k.Value] = k
		*out = append(*out, [2]*yaml.Node{k, v})
	}
	if depth > 10 {
		return
	}
	for _, m := range merges {
		m = resolve(m)
		var srcs []*yaml.Node
		switch {
		case m != nil && m.Kind == yaml.MappingNode:
			srcs = []*yaml.Node{m}
		case m != nil && m.Kind == yaml.SequenceNode:
			for _, s := range m.Content {
				srcs = append(srcs, resolve(s))
			}
		}
		for _, s := range srcs {
			if s == nil || s.Kind != yaml.MappingNode {
				d.at(m, path, "merge (<<) needs a mapping or a list of mappings")
				continue
			}
			if merged[s] {
				continue
			}
			merged[s] = true
			d.pairs(s, path, seen, merged, out, depth+1)
		}
	}
}

// suggest proposes a known key close to an unknown one.
func suggest(key string, fields []field) string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	if best := nearest(key, keys, 3); best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return ""
}

// nearest returns the candidate with the smallest edit distance to s below
// limit, or "".
func nearest(s string, candidates []string, limit int) string {
	best, bestDist := "", limit
	for _, c := range candidates {
		if dist := editDistance(s, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list calls each for every item of a sequence.
func (d *decoder) list(n *yaml.Node, path string, each func(i int, item *yaml.Node, path string)) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.at(n, path, "expected a list, got %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		each(i, resolve(item), fmt.Sprintf("%s[%d]", path, i))
	}
}

// scalar returns a scalar's value with ${NAME} expanded. ok is false (and
// the problem recorded) for a non-scalar or an unset variable.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		d.at(n, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	s := n.Value
	if !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			d.at(n, path, "unterminated ${ in value")
			return "", false
		}
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		if !validEnvName(name) {
			d.at(n, path, "invalid environment variable name %q", name)
			ok = false
			continue
		}
		v, set := d.getenv(name)
		if !set {
			d.at(n, path, "environment variable %s is not set", name)
			ok = false
			continue
		}
		b.WriteString(v)
	}
	return b.String(), ok
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (d *decoder) str(dst *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if v, ok := d.scalar(n, path, "a string"); ok {
			*dst = v
		}
	}
}

func (d *decoder) secret(dst *Secret) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if v, ok := d.scalar(n, path, "a string"); ok {
			*dst = Secret(v)
		}
	}
}

func (d *decoder) boolean(dst *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		switch strings.ToLower(v) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			d.at(n, path, "expected true or false, got %q", v)
		}
	}
}

func (d *decoder) integer(dst *int64, minimum int64) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			d.wrap(n, path, fmt.Sprintf("expected an integer, got %q", v), err)
			return
		}
		if i < minimum {
			d.at(n, path, "must be at least %d", minimum)
			return
		}
		*dst = i
	}
}

func (d *decoder) duration(dst *time.Duration) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := ParseDuration(v)
		if err != nil {
			d.wrap(n, path, err.Error(), err)
			return
		}
		*dst = dur
	}
}

func (d *decoder) size(dst *int64) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path, "a size")
		if !ok {
			return
		}
		sz, err := ParseSize(v)
		if err != nil {
			d.wrap(n, path, err.Error(), err)
			return
		}
		*dst = sz
	}
}

// enum decodes a string that must be one of allowed.
func enum[T ~string](d *decoder, dst *T, allowed ...T) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		v, ok := d.scalar(n, path, "a string")
		if !ok {
			return
		}
		if !slices.Contains(allowed, T(v)) {
			names := make([]string, len(allowed))
			for i, a := range allowed {
				names[i] = string(a)
			}
			d.at(n, path, "must be one of %s, got %q", strings.Join(names, ", "), v)
			return
		}
		*dst = T(v)
	}
}

// ParseDuration parses a Go duration ("90s", "1h30m") or a number of days
// with an optional Go duration after it ("30d", "1d12h"). "0" is zero;
// negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("invalid duration \"\": empty")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err == nil {
			if n < 0 {
				return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
			}
			if n > int64(math.MaxInt64/(24*time.Hour)) {
				return 0, fmt.Errorf("invalid duration %q: too long", s)
			}
			days = n
			if s[i+1:] == "" {
				return time.Duration(days) * 24 * time.Hour, nil
			}
			s2 := s[i+1:]
			if strings.HasPrefix(s2, "-") || strings.HasPrefix(s2, "+") {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			rest, err := time.ParseDuration(s2)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q (want like 90s, 15m, 4h or 30d)", s)
			}
			total := time.Duration(days)*24*time.Hour + rest
			if total < 0 {
				return 0, fmt.Errorf("invalid duration %q: too long", s)
			}
			return total, nil
		}
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("invalid duration %q: missing unit (want like 90s, 15m, 4h or 30d)", s)
		}
		return 0, fmt.Errorf("invalid duration %q (want like 90s, 15m, 4h or 30d)", s)
	}
	if dur < 0 {
		return 0, fmt.Errorf("invalid duration %q: must not be negative", s)
	}
	return dur, nil
}

// ParseSize parses a byte size: plain bytes ("1048576"), or a whole number
// with a unit, decimal (B, KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB),
// optionally separated by a space: "2GiB", "500MB".
func ParseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "BKMGTPiEkb ")
	unit := strings.TrimSpace(s[len(num):])
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || num == "" || num[0] == '+' || num[0] == '-' {
		return 0, fmt.Errorf("invalid size %q (want like 0, 500MB or 2GiB)", s)
	}
	mult := map[string]int64{
		"": 1, "B": 1,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, unit)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}
