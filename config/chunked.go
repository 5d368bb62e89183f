package config

import (
	"bytes"
	"reflect"
	"regexp"
	"runtime"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// The YAML library builds a node tree of the whole document before it
// decodes anything; for 100,000 domains (8 MB of YAML) that tree alone is
// hundreds of MB. A large config whose top-level `domains:` is a plain
// block sequence is therefore parsed in chunks of items, so only one
// chunk's tree lives at a time. Anything else, and every config with a
// problem, takes the whole-document path, whose messages carry exact line
// numbers. TestChunkedMatchesWhole and FuzzChunkedParse check that the two
// paths agree.

const (
	// chunkedAbove is the config size from which chunked parsing is tried.
	chunkedAbove = 256 << 10
	// chunkItems is how many domains one chunk holds.
	chunkItems = 2000
)

// topLevelKey is a line that opens a key of the top-level mapping.
var topLevelKey = regexp.MustCompile(`^[a-z_]+:( |\n|$)`)

// parseChunked returns ok=false whenever the layout is not the plain one or
// any part has a problem; the caller then parses the whole document.
func parseChunked(data []byte, name, dir string, itemsPerChunk int) (*Config, *validator, bool) {
	header, items, ok := splitDomains(data)
	if !ok {
		return nil, nil, false
	}
	var f file
	if len(bytes.TrimSpace(header)) > 0 {
		if !decodeStrict(header, &f) || f.Domains != nil {
			return nil, nil, false
		}
	}
	// Chunks are decoded on every core, each into its own slot, and joined
	// in order: the result is the same as decoding them one after another.
	nChunks := (len(items) + itemsPerChunk - 1) / itemsPerChunk
	parts := make([][]fileDomain, nChunks)
	failed := make([]bool, nChunks)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), nChunks) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				start, end := k*itemsPerChunk, min((k+1)*itemsPerChunk, len(items))
				chunk := make([]byte, 0, len("domains:\n")+items[end-1][1]-items[start][0])
				chunk = append(chunk, "domains:\n"...)
				for _, it := range items[start:end] {
					chunk = append(chunk, data[it[0]:it[1]]...)
				}
				var part file
				failed[k] = !decodeStrict(chunk, &part) || len(part.Domains) != end-start
				parts[k] = part.Domains
			}
		}()
	}
	for k := range nChunks {
		next <- k
	}
	close(next)
	wg.Wait()
	for k := range nChunks {
		if failed[k] {
			return nil, nil, false
		}
		f.Domains = append(f.Domains, parts[k]...)
	}
	v := &validator{file: name}
	c := v.config(&f, dir)
	if len(v.problems) > 0 {
		return nil, nil, false
	}
	return c, v, true
}

// decodeStrict decodes one document with the unknown-key check; false on
// any problem.
func decodeStrict(doc []byte, f *file) bool {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return false
	}
	if len(root.Content) == 0 {
		return true // only comments: nothing to decode
	}
	v := validator{}
	v.knownKeys(root.Content[0], reflect.TypeOf(file{}), "")
	return len(v.problems) == 0 && root.Decode(f) == nil
}

// splitDomains finds a top-level "domains:" line followed by a block
// sequence, and returns the document without that block and the byte range
// of each item (its "- " line and the lines under it). ok is false for any
// other layout: flow style, document markers, directives, CR line ends,
// items at differing indents.
func splitDomains(data []byte) (header []byte, items [][2]int, ok bool) {
	if bytes.IndexByte(data, '\r') >= 0 || bytes.HasPrefix(data, []byte("%")) {
		return nil, nil, false
	}
	lines, ok := scanLines(data)
	if !ok {
		return nil, nil, false
	}
	at := -1
	for n, l := range lines {
		t := bytes.TrimRight(data[l.start:l.end], " \n")
		if l.indent == 0 && bytes.Equal(t, []byte("domains:")) {
			if at >= 0 {
				return nil, nil, false
			}
			at = n
		}
	}
	if at < 0 {
		return nil, nil, false
	}
	items, end, ok := domainItems(data, lines, at)
	if !ok || !plainMapping(data, lines, at, end) {
		return nil, nil, false
	}
	resume := len(data) // where the header goes on after the block
	if end < len(lines) {
		resume = lines[end].start
	}
	header = append(append([]byte(nil), data[:lines[at].start]...), data[resume:]...)
	return header, items, true
}

// textLine is one line of a config file.
type textLine struct {
	start, end int // end includes the newline
	indent     int
	blank      bool // empty or only a comment
}

// scanLines splits data into lines; not ok for a document with YAML
// directives or several documents, which the chunked path leaves alone.
func scanLines(data []byte) ([]textLine, bool) {
	var lines []textLine
	for i := 0; i < len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += i + 1
		}
		text := data[i:end]
		ind := 0
		for ind < len(text) && text[ind] == ' ' {
			ind++
		}
		rest := bytes.TrimRight(text[ind:], "\n")
		lines = append(lines, textLine{i, end, ind, len(rest) == 0 || rest[0] == '#'})
		if ind == 0 && (bytes.HasPrefix(rest, []byte("---")) || bytes.HasPrefix(rest, []byte("...")) || bytes.HasPrefix(rest, []byte("%"))) {
			return nil, false
		}
		i = end
	}
	return lines, true
}

// domainItems are the byte ranges of the block list under the domains:
// line at lines[at], and end, the line after the block; not ok when the
// block is not a plain list of items.
func domainItems(data []byte, lines []textLine, at int) (items [][2]int, end int, ok bool) {
	isItem := func(l textLine, indent int) bool {
		t := data[l.start+l.indent : l.end]
		return l.indent == indent && len(t) > 0 && t[0] == '-' && (len(t) == 1 || t[1] == ' ' || t[1] == '\n')
	}
	itemIndent, end := -1, len(lines)
	for n := at + 1; n < len(lines); n++ {
		l := lines[n]
		if l.blank {
			continue
		}
		if itemIndent < 0 {
			if !isItem(l, l.indent) {
				return nil, 0, false
			}
			itemIndent = l.indent
		}
		switch {
		case isItem(l, itemIndent):
			items = append(items, [2]int{l.start, l.end})
		case l.indent == 0:
			end = n // the next top-level key
		case l.indent <= itemIndent:
			return nil, 0, false
		default:
			items[len(items)-1][1] = l.end
		}
		if end != len(lines) {
			break
		}
	}
	if len(items) == 0 {
		return nil, 0, false
	}
	// Blank and comment lines between items belong to the item before.
	for k := range items[:len(items)-1] {
		items[k][1] = items[k+1][0]
	}
	return items, end, true
}

// plainMapping reports whether the document is a plain top-level block
// mapping: every line at column 0 outside the domains block (lines at
// to end) is a "key:" line.
func plainMapping(data []byte, lines []textLine, at, end int) bool {
	for n, l := range lines {
		inBlock := n > at && n < end
		if l.blank || l.indent > 0 || inBlock {
			continue
		}
		if !topLevelKey.Match(data[l.start:l.end]) {
			return false
		}
	}
	return true
}
