package chatapp

import (
	"encoding/json"
	"fmt"
	"github.com/wagate/wagate/message"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// metaTemplate is the part of Meta's template object the translation reads.
type metaTemplate struct {
	Name     string `json:"name"`
	Language *struct {
		Code string `json:"code"`
	} `json:"language"`
	Components []metaComponent `json:"components"`
}

type metaComponent struct {
	Type       string      `json:"type"`
	SubType    string      `json:"sub_type"`
	Parameters []metaParam `json:"parameters"`
}

type metaParam struct {
	Type          string    `json:"type"`
	ParameterName string    `json:"parameter_name"`
	Text          string    `json:"text"`
	Payload       string    `json:"payload"`
	Currency      *fallback `json:"currency"`
	DateTime      *fallback `json:"date_time"`
}

type fallback struct {
	FallbackValue string `json:"fallback_value"`
}

// template adds Type=template, TemplateCode, TemplateName (Meta's template
// name), Language (language.code), TemplateParams and Payload for Meta's
// template object content. TemplateCode is the code codes gives the name
// and language; without one, the name.
//
// TemplateParams is a JSON object of the body's parameters, keyed by their
// parameter_name (Meta's named parameters) or by position ("1", "2", …);
// text, currency and date_time parameters give their text or
// fallback_value. Payload is a JSON array of the quick-reply buttons'
// payloads in the order of the components. Header parameters and other
// button parameters have no documented place in SendChatappMessage and are
// refused, as is any other component.
func (r *request) template(content []byte, codes map[string]map[string]string) error {
	var t metaTemplate
	if err := json.Unmarshal(content, &t); err != nil {
		return invalid("template is not Meta's template object: " + err.Error())
	}
	switch {
	case t.Name == "":
		return invalid("template has no name")
	case t.Language == nil || t.Language.Code == "":
		return invalid("template has no language code")
	}
	b := r.content[:0]
	p := r.payload[:0]
	bodies := 0
	for i := range t.Components {
		c := &t.Components[i]
		switch strings.ToLower(c.Type) {
		case "body":
			if bodies++; bodies > 1 {
				return invalid("template has two body components")
			}
			var err error
			if b, err = appendParams(b, c.Parameters); err != nil {
				return err
			}
		case "header":
			if len(c.Parameters) > 0 {
				return invalid("template header parameters are not supported by chatapp")
			}
		case "button":
			if c.SubType != "quick_reply" {
				if len(c.Parameters) > 0 {
					return invalid(fmt.Sprintf("template %q button parameters are not supported by chatapp", c.SubType))
				}
				continue
			}
			if len(c.Parameters) != 1 || c.Parameters[0].Type != "payload" {
				return invalid("a quick_reply button needs one payload parameter")
			}
			if len(p) == 0 {
				p = append(p, '[')
			} else {
				p = append(p, ',')
			}
			p = message.AppendJSONString(p, c.Parameters[0].Payload)
		default:
			return invalid(fmt.Sprintf("template component %q is not supported by chatapp", c.Type))
		}
	}
	code, ok := codes[t.Name][t.Language.Code]
	if !ok {
		code = t.Name
	}
	r.params = append(r.params,
		param{key: "Type", s: "template"},
		param{key: "TemplateCode", s: code},
		param{key: "TemplateName", s: t.Name},
		param{key: "Language", s: t.Language.Code},
	)
	if len(b) > 0 {
		r.content = b
		r.params = append(r.params, param{key: "TemplateParams", b: r.content})
	}
	if len(p) > 0 {
		r.payload = append(p, ']')
		r.params = append(r.params, param{key: "Payload", b: r.payload})
	}
	return nil
}

// appendParams appends the body parameters ps as a JSON object keyed by
// name or 1-based position; none appends nothing.
func appendParams(dst []byte, ps []metaParam) ([]byte, error) {
	if len(ps) == 0 {
		return dst, nil
	}
	dst = append(dst, '{')
	for i := range ps {
		p := &ps[i]
		var v string
		switch {
		case p.Type == "text":
			v = p.Text
		case p.Type == "currency" && p.Currency != nil:
			v = p.Currency.FallbackValue
		case p.Type == "date_time" && p.DateTime != nil:
			v = p.DateTime.FallbackValue
		default:
			return dst, invalid(fmt.Sprintf("template body parameter of type %q is not supported by chatapp", p.Type))
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		if p.ParameterName != "" {
			dst = message.AppendJSONString(dst, p.ParameterName)
		} else {
			dst = append(dst, '"')
			dst = strconv.AppendInt(dst, int64(i+1), 10)
			dst = append(dst, '"')
		}
		dst = append(dst, ':')
		dst = message.AppendJSONString(dst, v)
	}
	return append(dst, '}'), nil
}

// linkName is the last path segment of a media link, a document's name
// when Meta's object gives none.
func linkName(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	if b := path.Base(u.Path); b != "/" && b != "." {
		return b
	}
	return ""
}
