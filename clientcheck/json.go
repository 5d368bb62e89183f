package clientcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// V2 is an Autodiscover v2 answer as Outlook mobile reads it.
type V2 struct {
	Protocol string
	URL      string
}

// ReadV2 checks an Autodiscover v2 success answer: JSON, exactly the
// Protocol and Url members, an https Url, as Exchange Online answers.
func ReadV2(contentType string, body []byte) (*V2, error) {
	if !strings.HasPrefix(contentType, "application/json") {
		return nil, fmt.Errorf("Content-Type %q, want application/json", contentType)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var v struct {
		Protocol string
		URL      string `json:"Url"`
	}
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if v.Protocol == "" {
		return nil, errors.New("no Protocol")
	}
	u, err := url.Parse(v.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("Url %q is not a plain https URL", v.URL)
	}
	return &V2{Protocol: v.Protocol, URL: v.URL}, nil
}

// V2Error is an Autodiscover v2 error as Outlook mobile reads it.
type V2Error struct {
	ErrorCode, ErrorMessage string
}

// ReadV2Error checks an Autodiscover v2 error answer: JSON, exactly the
// ErrorCode and ErrorMessage members, as Exchange Online answers.
func ReadV2Error(contentType string, body []byte) (*V2Error, error) {
	if !strings.HasPrefix(contentType, "application/json") {
		return nil, fmt.Errorf("Content-Type %q, want application/json", contentType)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var v V2Error
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if v.ErrorCode == "" || v.ErrorMessage == "" {
		return nil, errors.New("no ErrorCode or ErrorMessage")
	}
	return &v, nil
}
