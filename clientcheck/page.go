package clientcheck

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Page is the setup page as a person (and a browser) reads it: the
// address form, the settings table, the profile link and QR code.
type Page struct {
	Lang        string // <html lang>
	Form        bool   // a form that asks for the address (input name=email)
	Email       string // the address the form is filled with
	Caption     string // the settings table's caption
	Rows        []PageRow
	ProfileLink string // the link to the Apple profile, if offered
	QRCode      bool   // an inline SVG QR code
}

// PageRow is one row of the settings table, each cell's text as shown.
type PageRow struct {
	Service, Server, Port, Encryption, SignIn, Username string
}

// ReadPage parses a setup page with an HTML5 parser (golang.org/x/net/html,
// the algorithm browsers use), independently of how it was written.
func ReadPage(contentType string, body []byte) (*Page, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "text/html" || !strings.EqualFold(params["charset"], "utf-8") {
		return nil, fmt.Errorf("Content-Type %q, want text/html; charset=utf-8", contentType)
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("not HTML: %w", err)
	}
	p := &Page{}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Html:
				p.Lang = attr(n, "lang")
			case atom.Input:
				if attr(n, "name") == "email" {
					p.Form, p.Email = true, attr(n, "value")
				}
			case atom.Caption:
				p.Caption = text(n)
			case atom.Tbody:
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.DataAtom != atom.Tr {
						continue
					}
					var cells []string
					for td := c.FirstChild; td != nil; td = td.NextSibling {
						if td.DataAtom == atom.Td || td.DataAtom == atom.Th {
							cells = append(cells, text(td))
						}
					}
					if len(cells) != 6 {
						continue
					}
					p.Rows = append(p.Rows, PageRow{cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]})
				}
				return
			case atom.A:
				if h := attr(n, "href"); strings.Contains(h, "/mobileconfig") && p.ProfileLink == "" {
					p.ProfileLink = h
				}
			case atom.Svg:
				if strings.Contains(attr(n, "class"), "qr") {
					p.QRCode = true
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !p.Form {
		return p, errors.New("no form that asks for the address")
	}
	return p, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is an element's text as shown: its text nodes joined (a <wbr>
// adds nothing).
func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}
