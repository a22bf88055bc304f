package ingest

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets hold the decoders to one promise: any content is either
// refused with an error that has a code and names a field, or becomes
// JSON that Meta takes. The checks below restate Meta's limits on the
// output, independently of the decoders' own checks.

// fuzzRefusal fails unless e is a well-formed refusal.
func fuzzRefusal(t *testing.T, e *apiError) {
	t.Helper()
	if e.Code != "INVALID_REQUEST" || e.Message == "" {
		t.Fatalf("refusal without a code or message: %+v", e)
	}
	if f, _ := e.Details["field"].(string); f == "" {
		t.Fatalf("refusal %q names no field", e.Message)
	}
}

// strictUnmarshal decodes b into v, refusing fields v does not know, so
// that a field Meta does not document fails the check.
func strictUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s is not Meta's shape: %v", b, err)
	}
}

// runesIn fails unless s has min to max characters (and is not blank when
// min > 0).
func runesIn(t *testing.T, what, s string, min, max int) {
	t.Helper()
	if n := utf8.RuneCountInString(s); n < min || n > max || (min > 0 && strings.TrimSpace(s) == "") {
		t.Fatalf("%s %q has %d characters, want %d to %d", what, s, utf8.RuneCountInString(s), min, max)
	}
}

func httpURLOK(t *testing.T, what, s string) {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s, " \t\r\n") {
		t.Fatalf("%s %q is not an absolute http(s) URL", what, s)
	}
}

type metaMedia struct {
	Link     string `json:"link"`
	Filename string `json:"filename"`
}

type metaInteractive struct {
	Type   string `json:"type"`
	Header *struct {
		Type     string     `json:"type"`
		Text     string     `json:"text"`
		Image    *metaMedia `json:"image"`
		Video    *metaMedia `json:"video"`
		Document *metaMedia `json:"document"`
	} `json:"header"`
	Body struct {
		Text string `json:"text"`
	} `json:"body"`
	Footer *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Action struct {
		Buttons []struct {
			Type  string `json:"type"`
			Reply struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"reply"`
		} `json:"buttons"`
		Button   string `json:"button"`
		Sections []struct {
			Title string `json:"title"`
			Rows  []struct {
				ID          string `json:"id"`
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"rows"`
		} `json:"sections"`
		Name       string `json:"name"`
		Parameters *struct {
			DisplayText string `json:"display_text"`
			URL         string `json:"url"`
		} `json:"parameters"`
	} `json:"action"`
}

// checkMetaInteractive fails unless b is an interactive object within
// Meta's limits.
func checkMetaInteractive(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	var m metaInteractive
	strictUnmarshal(t, b, &m)
	runesIn(t, "body", m.Body.Text, 1, 1024)
	if m.Footer != nil {
		runesIn(t, "footer", m.Footer.Text, 1, 60)
	}
	if h := m.Header; h != nil {
		switch h.Type {
		case "text":
			runesIn(t, "header", h.Text, 1, 60)
		case "image", "video", "document":
			media := map[string]*metaMedia{"image": h.Image, "video": h.Video, "document": h.Document}[h.Type]
			if m.Type == "list" || media == nil || h.Text != "" {
				t.Fatalf("header %s of a %s message: %s", h.Type, m.Type, b)
			}
			httpURLOK(t, "header link", media.Link)
		default:
			t.Fatalf("header type %q: %s", h.Type, b)
		}
	}
	a := m.Action
	switch m.Type {
	case "button":
		if n := len(a.Buttons); n < 1 || n > 3 || a.Button != "" || a.Sections != nil || a.Name != "" {
			t.Fatalf("button message with %d buttons: %s", n, b)
		}
		ids, titles := map[string]bool{}, map[string]bool{}
		for _, x := range a.Buttons {
			if x.Type != "reply" || ids[x.Reply.ID] || titles[x.Reply.Title] || strings.TrimSpace(x.Reply.ID) != x.Reply.ID {
				t.Fatalf("button %+v: %s", x, b)
			}
			ids[x.Reply.ID], titles[x.Reply.Title] = true, true
			runesIn(t, "button id", x.Reply.ID, 1, 256)
			runesIn(t, "button title", x.Reply.Title, 1, 20)
		}
	case "list":
		runesIn(t, "list button", a.Button, 1, 20)
		if n := len(a.Sections); n < 1 || n > 10 || a.Buttons != nil || a.Name != "" {
			t.Fatalf("list with %d sections: %s", n, b)
		}
		rows, ids := 0, map[string]bool{}
		for _, s := range a.Sections {
			runesIn(t, "section title", s.Title, 0, 24)
			if len(a.Sections) > 1 && strings.TrimSpace(s.Title) == "" || len(s.Rows) == 0 {
				t.Fatalf("section %+v: %s", s, b)
			}
			for _, r := range s.Rows {
				rows++
				if ids[r.ID] {
					t.Fatalf("row id %q repeated: %s", r.ID, b)
				}
				ids[r.ID] = true
				runesIn(t, "row id", r.ID, 1, 200)
				runesIn(t, "row title", r.Title, 1, 24)
				runesIn(t, "row description", r.Description, 0, 72)
			}
		}
		if rows > 10 {
			t.Fatalf("list with %d rows: %s", rows, b)
		}
	case "cta_url":
		if a.Name != "cta_url" || a.Parameters == nil || a.Buttons != nil || a.Sections != nil {
			t.Fatalf("cta_url action: %s", b)
		}
		runesIn(t, "display text", a.Parameters.DisplayText, 1, 20)
		httpURLOK(t, "url", a.Parameters.URL)
	default:
		t.Fatalf("interactive type %q: %s", m.Type, b)
	}
}

func FuzzInteractiveContent(f *testing.F) {
	for _, s := range []struct{ typ, content string }{
		{"buttons", `{"text":"How would you like to extend your stay?","buttons":[{"id":"extend_1_night","title":"1 More Night"},{"id":"extend_2_nights","title":"2 More Nights"},{"id":"call_front_desk","title":"Call Front Desk"}]}`},
		{"list", `{"text":"What service would you like to request?","button_text":"View Services","sections":[{"title":"Room Services","rows":[{"id":"housekeeping","title":"Housekeeping","description":"Extra towels, cleaning"}]},{"title":"Guest Services","rows":[{"id":"concierge","title":"Concierge"}]}]}`},
		{"cta_url", `{"text":"Key","header":{"type":"image","link":"https://example.com/k.jpg"},"footer":{"text":"Grand Plaza"},"display_text":"Open","url":"https://example.com/key"}`},
		{"button", `{"text":"Hi","header":"Room 205","footer":"Thanks","buttons":[{"id":"a","title":"A"}]}`},
		{"list", `{"text":"Hi","header":{"type":"image","link":"https://x.example/a.jpg"},"button_text":"Open","sections":[{"rows":[{"id":"a","title":"A"}]}]}`},
		{"buttons", `{"text":"Hi","buttons":[{"id":"a","title":"A"},{"id":"a","title":"B"}]}`},
		{"buttons", `{"text":"Hi","buttons":[{"id":" a","title":"` + strings.Repeat("é", 21) + `"}]}`},
		{"list", `{"text":"Hi","button_text":"Open","sections":[{"title":"","rows":[{"id":"a","title":"A"}]},{"title":"B","rows":[]}]}`},
		{"cta_url", `{"text":"Hi","display_text":"Open","url":"javascript:alert(1)"}`},
		{"buttons", `{"text":"\u2028\"<>","header":{"type":"document","link":"http://a.b/c","filename":"x\u0000.pdf"},"buttons":[{"id":"\\","title":"\t"}]}`},
		{"carousel", `{}`},
		{"buttons", `null`},
		{"list", `{"text":"Hi","button_text":"Open","sections":"x"}`},
	} {
		f.Add(s.typ, []byte(s.content))
	}
	f.Fuzz(func(t *testing.T, typ string, content []byte) {
		var m interactiveMsg
		if e := decodeInteractive(typ, content, &m); e != nil {
			fuzzRefusal(t, e)
			return
		}
		checkMetaInteractive(t, appendInteractive(nil, &m))
		// The whole request takes the same content the same way.
		body, err := json.Marshal(map[string]any{"guest_phone": "+1234567890", "interactive_type": typ, "content": json.RawMessage(content)})
		if err != nil {
			return // content the request cannot carry (not one JSON value)
		}
		var r interactiveRequest
		var m2 interactiveMsg
		if e := decodeInteractiveRequest(body, &r, &m2); e != nil {
			t.Fatalf("content accepted alone, refused in a request: %s", e.Message)
		}
		if a, b := appendInteractive(nil, &m), appendInteractive(nil, &m2); !bytes.Equal(a, b) {
			t.Fatalf("the request built %s, the content alone %s", b, a)
		}
	})
}

// metaContact is Meta's contact object, every field it documents.
type metaContact struct {
	Addresses []struct {
		Street      string `json:"street"`
		City        string `json:"city"`
		State       string `json:"state"`
		Zip         string `json:"zip"`
		Country     string `json:"country"`
		CountryCode string `json:"country_code"`
		Type        string `json:"type"`
	} `json:"addresses"`
	Birthday string `json:"birthday"`
	Emails   []struct {
		Email string `json:"email"`
		Type  string `json:"type"`
	} `json:"emails"`
	Name *struct {
		FormattedName string `json:"formatted_name"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
		MiddleName    string `json:"middle_name"`
		Suffix        string `json:"suffix"`
		Prefix        string `json:"prefix"`
	} `json:"name"`
	Org *struct {
		Company    string `json:"company"`
		Department string `json:"department"`
		Title      string `json:"title"`
	} `json:"org"`
	Phones []struct {
		Phone string `json:"phone"`
		Type  string `json:"type"`
		WaID  string `json:"wa_id"`
	} `json:"phones"`
	URLs []struct {
		URL  string `json:"url"`
		Type string `json:"type"`
	} `json:"urls"`
}

func oneOf(t *testing.T, what, v string, allowed ...string) {
	t.Helper()
	if v == "" {
		return
	}
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	t.Fatalf("%s %q is not one of %v", what, v, allowed)
}

// checkMetaContacts fails unless b is a contacts array Meta takes.
func checkMetaContacts(t *testing.T, b []byte) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("not JSON: %s", b)
	}
	var cs []metaContact
	strictUnmarshal(t, b, &cs)
	if len(cs) < 1 || len(cs) > 5 {
		t.Fatalf("%d contacts: %s", len(cs), b)
	}
	for _, c := range cs {
		if c.Name == nil || strings.TrimSpace(c.Name.FormattedName) == "" {
			t.Fatalf("contact without formatted_name: %s", b)
		}
		if c.Birthday != "" {
			if _, err := time.Parse(time.DateOnly, c.Birthday); err != nil {
				t.Fatalf("birthday %q: %s", c.Birthday, b)
			}
		}
		for _, p := range c.Phones {
			digits := 0
			for _, r := range p.Phone {
				if r >= '0' && r <= '9' {
					digits++
				}
			}
			if digits < 7 || digits > 15 {
				t.Fatalf("phone %q: %s", p.Phone, b)
			}
			oneOf(t, "phone type", p.Type, "CELL", "MAIN", "IPHONE", "HOME", "WORK")
		}
		for _, e := range c.Emails {
			if strings.Count(e.Email, "@") < 1 || strings.ContainsAny(e.Email, " <>") {
				t.Fatalf("email %q: %s", e.Email, b)
			}
			oneOf(t, "email type", e.Type, "HOME", "WORK")
		}
		for _, u := range c.URLs {
			httpURLOK(t, "contact url", u.URL)
			oneOf(t, "url type", u.Type, "HOME", "WORK")
		}
		for _, a := range c.Addresses {
			oneOf(t, "address type", a.Type, "HOME", "WORK")
			if a.CountryCode != "" && len(a.CountryCode) != 2 {
				t.Fatalf("country code %q: %s", a.CountryCode, b)
			}
		}
	}
}

func FuzzContactsContent(f *testing.F) {
	for _, s := range []string{
		`{"contacts":[` + ixMetaContact + `]}`,
		`{"contacts":[{"name":{"formatted_name":"Front desk"}}]}`,
		`{"contacts":[{"name":{"formatted_name":"A"},"phones":[{"phone":"+1 (650) 555-1234","type":"cell","wa_id":"16505551234"}]}]}`,
		`{"contacts":[{"name":{"formatted_name":"A"},"emails":[{"email":"a@b.co","type":"home"}],"urls":[{"url":"https://x.example"}]}]}`,
		`{"contacts":[{"name":{"formatted_name":"A"},"addresses":[{"city":"Berlin","country_code":"de"}],"birthday":"1984-06-30"}]}`,
		`{"contacts":[{"name":{"formatted_name":"A"},"birthday":"1984-02-30"}]}`,
		`{"contacts":[{"name":{"first_name":"A"}}]}`,
		`{"contacts":[]}`,
		`{"contacts":[1]}`,
		`{"contacts":{"name":"x"}}`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		out, preview, e := buildContactsContent(content, nil)
		if e != nil {
			fuzzRefusal(t, e)
			return
		}
		checkMetaContacts(t, out)
		if !strings.HasPrefix(preview, "[contact] ") {
			t.Fatalf("preview %q", preview)
		}
	})
}

func FuzzLocationContent(f *testing.F) {
	for _, s := range []string{
		`{"latitude":52.52,"longitude":13.405,"name":"Grand Plaza","address":"Unter den Linden 1"}`,
		`{"latitude":-90,"longitude":180}`,
		`{"latitude":90.1,"longitude":0}`,
		`{"latitude":1e-320,"longitude":-0}`,
		`{"latitude":"1","longitude":2}`,
		`{"longitude":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		out, _, e := buildLocationContent(content, nil)
		if e != nil {
			fuzzRefusal(t, e)
			return
		}
		var l struct {
			Latitude  *float64 `json:"latitude"`
			Longitude *float64 `json:"longitude"`
			Name      string   `json:"name"`
			Address   string   `json:"address"`
		}
		strictUnmarshal(t, out, &l)
		if l.Latitude == nil || l.Longitude == nil || *l.Latitude < -90 || *l.Latitude > 90 || *l.Longitude < -180 || *l.Longitude > 180 {
			t.Fatalf("location %s", out)
		}
	})
}
