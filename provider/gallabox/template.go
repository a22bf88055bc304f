package gallabox

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
	Index      metaIndex   `json:"index"`
	Parameters []metaParam `json:"parameters"`
}

type metaParam struct {
	Type          string     `json:"type"`
	ParameterName string     `json:"parameter_name"`
	Text          string     `json:"text"`
	Payload       string     `json:"payload"`
	Image         *metaMedia `json:"image"`
	Video         *metaMedia `json:"video"`
	Document      *metaMedia `json:"document"`
	Currency      *fallback  `json:"currency"`
	DateTime      *fallback  `json:"date_time"`
}

type metaMedia struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Filename string `json:"filename"`
}

type fallback struct {
	FallbackValue string `json:"fallback_value"`
}

// metaIndex is a button's index, which Meta writes as a string ("0") and
// some clients as a number.
type metaIndex int

func (x *metaIndex) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 9 {
		return fmt.Errorf("button index %s is not 0..9", b)
	}
	*x = metaIndex(n)
	return nil
}

// appendTemplate appends Gallabox's whatsapp object for Meta's template
// object content:
//
//	{"type":"template","template":{"templateName":…,"language":…,"bodyValues":{…},"headerValues":{…},"buttonValues":[…]}}
//
// Body parameters go into bodyValues by their parameter_name (Meta's named
// parameters) or by position ("1", "2", …); text, currency and date_time
// parameters give their text or fallback_value. A media header gives
// headerValues {"mediaUrl","mediaName"} (it needs a link: Gallabox cannot
// use a Meta media id); a text header gives headerValues like a body. Each
// button gives {"index","sub_type","parameters":{"type","payload"|"text"}}
// in buttonValues, as the examples of Gallabox's API reference write
// quick-reply and URL buttons. Anything else is refused.
func appendTemplate(dst, content []byte) ([]byte, error) {
	var t metaTemplate
	if err := json.Unmarshal(content, &t); err != nil {
		return dst, invalid("template is not Meta's template object: " + err.Error())
	}
	if t.Name == "" {
		return dst, invalid("template has no name")
	}
	dst = append(dst, `{"type":"template","template":{"templateName":`...)
	dst = message.AppendJSONString(dst, t.Name)
	if t.Language != nil && t.Language.Code != "" {
		// Gallabox's send documents no language; its template objects
		// (the template list, Template.Status webhooks) carry it as
		// "language", so it goes beside templateName under that name.
		dst = append(dst, `,"language":`...)
		dst = message.AppendJSONString(dst, t.Language.Code)
	}
	var body, header *metaComponent
	var buttons []*metaComponent
	for i := range t.Components {
		c := &t.Components[i]
		switch strings.ToLower(c.Type) {
		case "body":
			if body != nil {
				return dst, invalid("template has two body components")
			}
			body = c
		case "header":
			if header != nil {
				return dst, invalid("template has two header components")
			}
			header = c
		case "button":
			buttons = append(buttons, c)
		default:
			return dst, invalid(fmt.Sprintf("template component %q is not supported by gallabox", c.Type))
		}
	}
	var err error
	if body != nil && len(body.Parameters) > 0 {
		dst = append(dst, `,"bodyValues":`...)
		if dst, err = appendValues(dst, "body", body.Parameters); err != nil {
			return dst, err
		}
	}
	if header != nil && len(header.Parameters) > 0 {
		dst = append(dst, `,"headerValues":`...)
		if dst, err = appendHeader(dst, header.Parameters); err != nil {
			return dst, err
		}
	}
	if len(buttons) > 0 {
		dst = append(dst, `,"buttonValues":[`...)
		for i, b := range buttons {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendButton(dst, b); err != nil {
				return dst, err
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, `}}`...), nil
}

// appendValues appends the text parameters ps as a JSON object keyed by
// name or 1-based position.
func appendValues(dst []byte, where string, ps []metaParam) ([]byte, error) {
	dst = append(dst, '{')
	for i := range ps {
		p := &ps[i]
		v, ok := textValue(p)
		if !ok {
			return dst, invalid(fmt.Sprintf("template %s parameter of type %q is not supported by gallabox", where, p.Type))
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

// textValue is the text a parameter stands for.
func textValue(p *metaParam) (string, bool) {
	switch p.Type {
	case "text":
		return p.Text, true
	case "currency":
		if p.Currency != nil {
			return p.Currency.FallbackValue, true
		}
	case "date_time":
		if p.DateTime != nil {
			return p.DateTime.FallbackValue, true
		}
	}
	return "", false
}

func appendHeader(dst []byte, ps []metaParam) ([]byte, error) {
	if len(ps) != 1 {
		return dst, invalid("template header has more than one parameter")
	}
	p := &ps[0]
	var media *metaMedia
	switch p.Type {
	case "text":
		return appendValues(dst, "header", ps)
	case "image":
		media = p.Image
	case "video":
		media = p.Video
	case "document":
		media = p.Document
	default:
		return dst, invalid(fmt.Sprintf("template header parameter of type %q is not supported by gallabox", p.Type))
	}
	switch {
	case media == nil:
		return dst, invalid("template header parameter has no " + p.Type + " object")
	case media.Link == "":
		return dst, invalid("template header " + p.Type + " needs a link: gallabox cannot use a media id")
	}
	dst = append(dst, `{"mediaUrl":`...)
	dst = message.AppendJSONString(dst, media.Link)
	name := media.Filename
	if name == "" && p.Type == "document" {
		name = linkName(media.Link)
	}
	if name != "" {
		dst = append(dst, `,"mediaName":`...)
		dst = message.AppendJSONString(dst, name)
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

func appendButton(dst []byte, b *metaComponent) ([]byte, error) {
	if b.SubType == "" {
		return dst, invalid("template button has no sub_type")
	}
	if len(b.Parameters) != 1 {
		return dst, invalid("template button needs exactly one parameter")
	}
	p := &b.Parameters[0]
	dst = append(dst, `{"index":`...)
	dst = strconv.AppendInt(dst, int64(b.Index), 10)
	dst = append(dst, `,"sub_type":`...)
	dst = message.AppendJSONString(dst, b.SubType)
	switch p.Type {
	case "payload":
		dst = append(dst, `,"parameters":{"type":"payload","payload":`...)
		dst = message.AppendJSONString(dst, p.Payload)
	case "text":
		dst = append(dst, `,"parameters":{"type":"text","text":`...)
		dst = message.AppendJSONString(dst, p.Text)
	default:
		return dst, invalid(fmt.Sprintf("template button parameter of type %q is not supported by gallabox", p.Type))
	}
	return append(dst, `}}`...), nil
}
