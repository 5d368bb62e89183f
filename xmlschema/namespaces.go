// Package xmlschema holds the dialects autodiscover-proxy speaks, as Go
// types named after their spec's elements: the XML ones read and written
// with etree (SOAP answers straight into bytes), Apple profiles as plists.
package xmlschema

import "github.com/beevik/etree"

// Namespaces. They are http://, not https://: the https form in today's
// Microsoft docs came from a 2020 bulk edit; Exchange, Gromox and
// Thunderbird use http:// ([MS-OXDSCLI] 2.2.4.1 examples).
const (
	NSResponse           = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	NSOutlookRequest     = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	NSOutlookResponse    = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	NSMobileSyncRequest  = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
	NSMobileSyncResponse = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
)

// OnOff is the on/off value type of the POX schema.
type OnOff string

const (
	On  OnOff = "on"
	Off OnOff = "off"
)

// newDocument starts a UTF-8 document with its XML declaration, which must
// be the very first bytes (Thunderbird and exchangelib refuse anything
// before <?xml).
func newDocument() *etree.Document {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	return doc
}

// finish indents the document the way every answer is written.
func finish(doc *etree.Document) *etree.Document {
	doc.Indent(2)
	return doc
}

// add appends <tag>text</tag> to parent and returns the new element.
func add(parent *etree.Element, tag, text string) *etree.Element {
	e := parent.CreateElement(tag)
	e.SetText(text)
	return e
}

// addIf appends <tag>text</tag> only when text is not empty.
func addIf(parent *etree.Element, tag, text string) {
	if text != "" {
		add(parent, tag, text)
	}
}
