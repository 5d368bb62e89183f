package xmlschema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// Request is a POX Autodiscover request (MS-OXDSCLI 2.2.3; MS-ASCMD 2.2.1.1
// for mobilesync): <Autodiscover><Request>...</Request></Autodiscover>.
type Request struct {
	// Namespace is the root element's namespace: the outlook or mobilesync
	// request schema.
	Namespace                string
	EMailAddress             string
	LegacyDN                 string
	AcceptableResponseSchema string
}

// ErrBadRequest is wrapped by every request parsing error.
var ErrBadRequest = errors.New("invalid autodiscover request")

// ParseRequest reads a POX request body. Names are matched by local name:
// clients differ in how they spell prefixes, and the namespace only picks a
// default schema. encoding/xml (under etree) expands no custom entities, so
// entity-expansion attacks fail as malformed XML; depth is capped by etree.
func ParseRequest(body []byte) (Request, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Autodiscover" {
		return Request{}, fmt.Errorf("%w: root element is not Autodiscover", ErrBadRequest)
	}
	reqs := root.SelectElements("Request")
	switch {
	case len(reqs) == 0:
		return Request{}, fmt.Errorf("%w: no Request element", ErrBadRequest)
	case len(reqs) > 1:
		return Request{}, fmt.Errorf("%w: more than one Request element", ErrBadRequest)
	}
	r := Request{Namespace: root.NamespaceURI()}
	addresses := 0
	for _, c := range reqs[0].ChildElements() {
		switch c.Tag {
		case "EMailAddress":
			// A request is about one user (MS-OXDSCLI 3.2.5: one EMailAddress
			// or LegacyDN); a second address could make an answer for one
			// user pass for another's.
			if addresses++; addresses > 1 {
				return Request{}, fmt.Errorf("%w: more than one EMailAddress", ErrBadRequest)
			}
			r.EMailAddress = strings.TrimSpace(c.Text())
		case "LegacyDN":
			r.LegacyDN = strings.TrimSpace(c.Text())
		case "AcceptableResponseSchema":
			r.AcceptableResponseSchema = strings.TrimSpace(c.Text())
		}
	}
	return r, nil
}

// Schema is the response schema to answer with: the one asked for, or, when
// the client named none, the one that goes with its request namespace.
func (r Request) Schema() string {
	if r.AcceptableResponseSchema != "" {
		return r.AcceptableResponseSchema
	}
	if r.Namespace == NSMobileSyncRequest {
		return NSMobileSyncResponse
	}
	return NSOutlookResponse
}

// Document renders the request, as sent to an upstream autodiscover: only
// the parsed fields, whatever else the client's body held (a DTD,
// comments, processing instructions, other elements).
func (r Request) Document() *etree.Document {
	ns := r.Namespace
	if ns == "" {
		ns = NSOutlookRequest
	}
	doc := newDocument()
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", ns)
	req := root.CreateElement("Request")
	add(req, "EMailAddress", r.EMailAddress)
	add(req, "AcceptableResponseSchema", r.Schema())
	return doc
}
