package xmlschema

// xmlWriter writes an indented document element by element, as etree's
// Indent(2) lays it out (an element with neither text nor children is
// self-closing): for answers whose size grows with the request, so that
// no tree of the whole answer is ever held. With count set it writes
// nothing and only adds up n, the bytes it would have written: the same
// walk measures an answer and then builds it.
type xmlWriter struct {
	b       []byte
	n       int
	count   bool
	depth   int
	scratch []byte // count: the escaped text, to measure it
}

func (w *xmlWriter) raw(s string) {
	if w.count {
		w.n += len(s)
		return
	}
	w.b = append(w.b, s...)
}

func (w *xmlWriter) text(s string) {
	if w.count {
		w.scratch = AppendEscaped(w.scratch[:0], s)
		w.n += len(w.scratch)
		return
	}
	w.b = AppendEscaped(w.b, s)
}

func (w *xmlWriter) indent() {
	for range w.depth {
		w.raw("  ")
	}
}

// tag writes the four parts of a tag without joining them first.
func (w *xmlWriter) tag(open, name, attrs, end string) {
	w.raw(open)
	w.raw(name)
	w.raw(attrs)
	w.raw(end)
}

// open starts element name on a line of its own; attrs, written as they
// are, is empty or starts with a space.
func (w *xmlWriter) open(name, attrs string) {
	w.indent()
	w.tag("<", name, attrs, ">\n")
	w.depth++
}

func (w *xmlWriter) close(name string) {
	w.depth--
	w.indent()
	w.tag("</", name, "", ">\n")
}

// leaf writes <name attrs>text</name>, or <name attrs/> for empty text.
func (w *xmlWriter) leaf(name, attrs, text string) {
	w.indent()
	if text == "" {
		w.raw("<" + name + attrs + "/>\n")
		return
	}
	w.raw("<" + name + attrs + ">")
	w.text(text)
	w.tag("</", name, "", ">\n")
}

// list writes element name holding n children, each written by item; with
// none, <name/>.
func (w *xmlWriter) list(name string, n int, item func(i int)) {
	if n == 0 {
		w.leaf(name, "", "")
		return
	}
	w.open(name, "")
	for i := range n {
		item(i)
	}
	w.close(name)
}
