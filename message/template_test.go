package message

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// seedLateCheckout is seed 001's template submission, exactly as written.
const seedLateCheckout = `{
	"name": "late_checkout_confirmation",
	"category": "UTILITY",
	"language": "en",
	"components": [
		{"type": "HEADER", "format": "TEXT", "text": "Late Checkout Confirmed"},
		{"type": "BODY", "text": "Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."},
		{"type": "FOOTER", "text": "Thank you for staying with us!"}
	]}`

func parseTemplate(t *testing.T, s string) *Template {
	t.Helper()
	var tp Template
	if err := json.Unmarshal([]byte(s), &tp); err != nil {
		t.Fatal(err)
	}
	tp.Normalize()
	return &tp
}

func welcome(t *testing.T) *Template {
	return parseTemplate(t, `{"name":"welcome_checkin","language":"en","category":"utility","components":[
		{"type":"header","format":"text","text":"Welcome, {{guest_name}}!","example":{"header_text_named_params":[{"param_name":"guest_name","example":"John Smith"}]}},
		{"type":"body","text":"Hello {{guest_name}}, welcome to {{hotel_name}}! Your room {{room_number}} is ready for check-in at {{checkin_time}}. We look forward to hosting you until {{checkout_date}}.",
		 "example":{"body_text_named_params":[{"param_name":"guest_name","example":"John Smith"},{"param_name":"hotel_name","example":"Grand Plaza Hotel"},
		  {"param_name":"room_number","example":"205"},{"param_name":"checkin_time","example":"3:00 PM"},{"param_name":"checkout_date","example":"January 18, 2024"}]}},
		{"type":"buttons","buttons":[{"type":"url","text":"Digital key","url":"https://hotel.example/key/{{1}}","example":["RB123456"]},{"type":"quick_reply","text":"Call me"}]}]}`)
}

func TestSeedTemplatePassesMetasRules(t *testing.T) {
	tp := parseTemplate(t, seedLateCheckout)
	if rs := tp.Validate(); len(rs) != 0 {
		t.Fatalf("seed 001's template refused: %+v", rs)
	}
	if tp.Format() != FormatPositional {
		t.Fatalf("format %s", tp.Format())
	}
	if rs := welcome(t).Validate(); len(rs) != 0 {
		t.Fatalf("named template refused: %+v", rs)
	}
}

func rulesOf(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Component+"/"+r.Field+"/"+r.Rule)
	}
	sort.Strings(out)
	return out
}

func TestValidateGivesEveryReason(t *testing.T) {
	f := func(name string, edit func(*Template), want ...string) {
		t.Run(name, func(t *testing.T) {
			tp := parseTemplate(t, seedLateCheckout)
			edit(tp)
			got := rulesOf(tp.Validate())
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			for _, r := range tp.Validate() {
				if r.Message == "" || r.Component == "" {
					t.Fatalf("reason without message or component: %+v", r)
				}
			}
		})
	}
	body := func(s string) func(*Template) { return func(tp *Template) { tp.Component(ComponentBody).Text = s } }
	f("name with capitals", func(tp *Template) { tp.Name = "Late_Checkout" }, "TEMPLATE/name/name_invalid")
	f("name with a space", func(tp *Template) { tp.Name = "late checkout" }, "TEMPLATE/name/name_invalid")
	f("name too long", func(tp *Template) { tp.Name = strings.Repeat("a", 513) }, "TEMPLATE/name/name_too_long")
	f("no name", func(tp *Template) { tp.Name = "" }, "TEMPLATE/name/name_required")
	f("unknown language", func(tp *Template) { tp.Language = "xx" }, "TEMPLATE/language/language_invalid")
	f("lowercase region", func(tp *Template) { tp.Language = "en_us" }, "TEMPLATE/language/language_invalid")
	f("no language", func(tp *Template) { tp.Language = "" }, "TEMPLATE/language/language_required")
	f("unknown category", func(tp *Template) { tp.Category = "PROMO" }, "TEMPLATE/category/category_invalid")
	f("authentication", func(tp *Template) { tp.Category = CategoryAuthentication }, "TEMPLATE/category/category_unsupported")
	f("bad group", func(tp *Template) { tp.Group = "Guest Services" }, "TEMPLATE/group/group_invalid")
	f("no body", func(tp *Template) { tp.Components = tp.Components[:1] }, "BODY/text/body_required")
	f("empty body", body("   "), "BODY/text/body_required")
	f("body too long", body("Hi {{1}}, "+strings.Repeat("word ", 205)+"thanks."), "BODY/text/body_too_long")
	f("two bodies", func(tp *Template) { tp.Components = append(tp.Components, tp.Components[1]) }, "BODY/type/component_repeated")
	f("unknown component", func(tp *Template) { tp.Components = append(tp.Components, TemplateComponent{Type: "CAROUSEL"}) },
		"TEMPLATE/components[3].type/component_invalid")
	f("header too long", func(tp *Template) { tp.Components[0].Text = strings.Repeat("x", 61) }, "HEADER/text/header_too_long")
	f("header two variables", func(tp *Template) { tp.Components[0].Text = "Room {{1}} for {{2}}" }, "HEADER/text/header_variables")
	f("header variable not 1", func(tp *Template) { tp.Components[0].Text = "Room {{2}}" }, "HEADER/text/variable_sequence")
	f("header line break", func(tp *Template) { tp.Components[0].Text = "Late\nCheckout" }, "HEADER/text/header_newline")
	f("header bad format", func(tp *Template) { tp.Components[0].Format = "GIF" }, "HEADER/format/header_format_invalid")
	f("image header with text", func(tp *Template) { tp.Components[0].Format = HeaderImage }, "HEADER/text/header_media_text")
	f("footer too long", func(tp *Template) { tp.Components[2].Text = strings.Repeat("x", 61) }, "FOOTER/text/footer_too_long")
	f("footer with a variable", func(tp *Template) { tp.Components[2].Text = "Thanks {{1}}" }, "FOOTER/text/footer_variables")
	f("variable at start", body("{{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Charges: {{4}} today."),
		"BODY/text/variable_at_start")
	f("variable at end", body("Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}"),
		"BODY/text/variable_at_end")
	f("adjacent variables", body("Hi {{1}} {{2}}, your late checkout has been confirmed for room {{3}} with charges of {{4}} in total."),
		"BODY/text/adjacent_variables")
	f("gap in numbers", body("Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{4}} and everything is set."),
		"BODY/text/variable_sequence")
	f("too many variables", body("Hi {{1}}, until {{2}} room {{3}} costs {{4}} ok."), "BODY/text/too_many_variables")
	f("mixed variables", body("Hi {{guest_name}}, your late checkout until {{2}} has been confirmed for room {{1}} today."),
		"TEMPLATE/parameter_format/mixed_variables")
	f("declared named", func(tp *Template) { tp.ParameterFormat = FormatNamed }, "TEMPLATE/parameter_format/parameter_format_mismatch")
	f("capital variable", body("Hi {{Guest}}, your late checkout has been confirmed for your room today."), "BODY/text/variable_invalid")
	f("unclosed variable", body("Hi {{1, your late checkout has been confirmed for your room today."), "BODY/text/variable_invalid")
	f("spaced variable", body("Hi {{ 1 }}, your late checkout has been confirmed for your room today."), "BODY/text/variable_invalid")
	f("examples for some variables only", func(tp *Template) {
		tp.Components[1].Example = &TemplateExample{BodyText: [][]string{{"Ana", "1 PM", "412"}}}
	}, "BODY/example.body_text/example_mismatch")
	f("an empty example", func(tp *Template) {
		tp.Components[1].Example = &TemplateExample{BodyText: [][]string{{"Ana", "1 PM", " ", "$20"}}}
	}, "BODY/example.body_text/example_empty")
	f("named examples for numbered variables", func(tp *Template) {
		tp.Components[1].Example = &TemplateExample{BodyTextNamed: []NamedExample{{"guest", "Ana"}}}
	}, "BODY/example.body_text_named_params/example_mismatch")
	f("examples elsewhere but not for the body", func(tp *Template) {
		tp.Components[0].Text = "Checkout for {{1}}"
		tp.Components[0].Example = &TemplateExample{HeaderText: []string{"Ana"}}
	}, "BODY/example/example_missing")
	f("no buttons", func(tp *Template) { tp.Components = append(tp.Components, TemplateComponent{Type: ComponentButtons}) },
		"BUTTONS/buttons/buttons_required")
	buttons := func(bs ...TemplateButton) func(*Template) {
		return func(tp *Template) {
			tp.Components = append(tp.Components, TemplateComponent{Type: ComponentButtons, Buttons: bs})
		}
	}
	qr := func(text string) TemplateButton { return TemplateButton{Type: ButtonQuickReply, Text: text} }
	site := TemplateButton{Type: ButtonURL, Text: "Open", URL: "https://hotel.example/"}
	call := TemplateButton{Type: ButtonPhoneNumber, Text: "Call", PhoneNumber: "+14155550123"}
	f("eleven buttons", buttons(qr("1"), qr("2"), qr("3"), qr("4"), qr("5"), qr("6"), qr("7"), qr("8"), qr("9"), qr("10"), qr("11")),
		"BUTTONS/buttons/too_many_buttons")
	f("button text too long", buttons(qr(strings.Repeat("x", 26))), "BUTTONS/buttons[0].text/button_text_too_long")
	f("button without text", buttons(qr("")), "BUTTONS/buttons[0].text/button_text_required")
	f("three url buttons", buttons(site, site, site), "BUTTONS/buttons/too_many_url_buttons")
	f("two phone buttons", buttons(call, call), "BUTTONS/buttons/too_many_phone_buttons")
	f("bad phone", buttons(TemplateButton{Type: ButtonPhoneNumber, Text: "Call", PhoneNumber: "front desk"}),
		"BUTTONS/buttons[0].phone_number/button_phone_invalid")
	f("url not http", buttons(TemplateButton{Type: ButtonURL, Text: "Open", URL: "ftp://hotel.example"}),
		"BUTTONS/buttons[0].url/button_url_invalid")
	f("url variable in the middle", buttons(TemplateButton{Type: ButtonURL, Text: "Open", URL: "https://hotel.example/{{1}}/key"}),
		"BUTTONS/buttons[0].url/button_url_variables")
	f("url sample without variable", buttons(TemplateButton{Type: ButtonURL, Text: "Open", URL: "https://hotel.example/", Example: []string{"x"}}),
		// A sample anywhere asks for samples everywhere.
		"BUTTONS/buttons[0].example/example_mismatch", "BODY/example/example_missing")
	f("unsupported button", buttons(TemplateButton{Type: "OTP", Text: "Copy"}), "BUTTONS/buttons[0].type/button_type_unsupported")
	f("interleaved quick replies", buttons(qr("Yes"), site, qr("No")), "BUTTONS/buttons/buttons_interleaved")
	f("grouped quick replies", buttons(qr("Yes"), qr("No"), site, call))
	f("several at once", func(tp *Template) { tp.Name = "Bad Name"; tp.Category = ""; tp.Components[2].Text = "{{1}}" },
		"TEMPLATE/name/name_invalid", "TEMPLATE/category/category_required", "FOOTER/text/footer_variables")
}

func TestReviewRulesAreTheReviewersOwn(t *testing.T) {
	for _, r := range []Reason{{Rule: "variable_at_end"}, {Rule: "adjacent_variables"}, {Rule: "too_many_variables"}, {Rule: "variable_at_start"}} {
		if !r.Review() {
			t.Fatalf("%s is found in review", r.Rule)
		}
	}
	if (Reason{Rule: "name_invalid"}).Review() {
		t.Fatal("a bad name is refused by the create call")
	}
}

func TestParseVariables(t *testing.T) {
	f := func(text string, want []string, wantErr bool) {
		t.Helper()
		vars, err := ParseVariables(text)
		if (err != nil) != wantErr {
			t.Fatalf("%q: err %v", text, err)
		}
		var got []string
		for _, v := range vars {
			got = append(got, v.Name)
			if text[v.Start:v.End] != "{{"+v.Name+"}}" {
				t.Fatalf("%q: offsets %d..%d", text, v.Start, v.End)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %q want %q", text, got, want)
		}
	}
	f("Hello {{guest_name}}, room {{room_number}}.", []string{"guest_name", "room_number"}, false)
	f("{{1}}{{2}} and {{1}}", []string{"1", "2", "1"}, false)
	f("no variables { here } {x}", nil, false)
	f("{{0}}", nil, true)
	f("{{01}}", nil, true)
	f("{{1a}}", nil, true)
	f("{{_x}}", nil, true)
	f("{{Name}}", nil, true)
	f("{{}}", nil, true)
	f("ok {{1}} then {{2", []string{"1"}, true)
	var ve *VariableError
	if _, err := ParseVariables("x {{bad-name}} y"); !errors.As(err, &ve) || ve.Offset != 2 || !strings.Contains(ve.Error(), "bad-name") {
		t.Fatalf("error does not name the variable: %v", err)
	}
}

func FuzzParseVariables(f *testing.F) {
	for _, s := range []string{"Hello {{guest_name}}!", "{{1}} {{2}}", "{{", "}}{{}}", "{{{1}}}", "a{{1}}b{{x_y}}c", "{{1\n}}", "é{{1}}é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		vars, err := ParseVariables(text)
		prev := 0
		for _, v := range vars {
			if v.Start < prev || v.End <= v.Start || v.End > len(text) || text[v.Start:v.End] != "{{"+v.Name+"}}" || !validVariableName(v.Name) {
				t.Fatalf("%q: bad variable %+v", text, v)
			}
			prev = v.End
		}
		if err == nil {
			// Without an error, no "{{" is left outside the variables.
			rest := 0
			for _, v := range vars {
				if strings.Contains(text[rest:v.Start], "{{") {
					t.Fatalf("%q: an opening before %+v was skipped", text, v)
				}
				rest = v.End
			}
			if strings.Contains(text[rest:], "{{") {
				t.Fatalf("%q: an opening after the last variable was skipped", text)
			}
		}
		// The text with its variables rendered back is the text.
		tp := Template{Components: []TemplateComponent{{Type: ComponentBody, Text: text}}}
		if err == nil && tp.Render(nil) != text {
			t.Fatalf("render without values changed %q into %q", text, tp.Render(nil))
		}
	})
}

func TestBuildSendNamed(t *testing.T) {
	tp := welcome(t)
	tp.Status = TemplateApproved
	obj, preview, err := tp.BuildSend(map[string]string{
		"guest_name": "John Smith", "hotel_name": "Grand Plaza Hotel", "room_number": "205",
		"checkin_time": "3:00 PM", "checkout_date": "January 18, 2024", "button_0": "RB123456", "button_1": "CALL_ME",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"welcome_checkin","language":{"code":"en"},"components":[` +
		`{"type":"header","parameters":[{"type":"text","parameter_name":"guest_name","text":"John Smith"}]},` +
		`{"type":"body","parameters":[{"type":"text","parameter_name":"guest_name","text":"John Smith"},` +
		`{"type":"text","parameter_name":"hotel_name","text":"Grand Plaza Hotel"},{"type":"text","parameter_name":"room_number","text":"205"},` +
		`{"type":"text","parameter_name":"checkin_time","text":"3:00 PM"},{"type":"text","parameter_name":"checkout_date","text":"January 18, 2024"}]},` +
		`{"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"RB123456"}]},` +
		`{"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"CALL_ME"}]}]}`
	if string(obj) != want {
		t.Fatalf("got  %s\nwant %s", obj, want)
	}
	if preview != "Hello John Smith, welcome to Grand Plaza Hotel! Your room 205 is ready for check-in at 3:00 PM. We look forward to hosting you until January 18, 2024." {
		t.Fatalf("preview %q", preview)
	}
	var keys []string
	for _, p := range tp.Parameters() {
		keys = append(keys, p.Key+"@"+p.Component)
	}
	if want := []string{"guest_name@HEADER", "hotel_name@BODY", "room_number@BODY", "checkin_time@BODY", "checkout_date@BODY", "button_0@BUTTONS", "button_1@BUTTONS"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("parameters %v", keys)
	}
	if ex := tp.ExampleValues(); ex["guest_name"] != "John Smith" || ex["button_0"] != "RB123456" || ex["checkout_date"] != "January 18, 2024" {
		t.Fatalf("examples %v", ex)
	}
}

func TestBuildSendPositional(t *testing.T) {
	tp := parseTemplate(t, seedLateCheckout)
	obj, preview, err := tp.BuildSend(map[string]string{"1": "Ana", "2": "1:00 PM", "3": "412", "4": "$20 <incl. tax> & fees"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"late_checkout_confirmation","language":{"code":"en"},"components":[{"type":"body","parameters":[` +
		`{"type":"text","text":"Ana"},{"type":"text","text":"1:00 PM"},{"type":"text","text":"412"},{"type":"text","text":"$20 <incl. tax> & fees"}]}]}`
	if string(obj) != want {
		t.Fatalf("got  %s\nwant %s", obj, want)
	}
	if preview != "Hi Ana, your late checkout until 1:00 PM has been confirmed for room 412. Additional charges: $20 <incl. tax> & fees." {
		t.Fatalf("preview %q", preview)
	}
}

func TestBuildSendHeaders(t *testing.T) {
	f := func(name, header string, values map[string]string, want string) {
		t.Run(name, func(t *testing.T) {
			tp := parseTemplate(t, `{"name":"room_ready","language":"en","category":"UTILITY","components":[`+header+
				`,{"type":"BODY","text":"Good news {{1}}, your room is ready for you now."}]}`)
			if rs := tp.Validate(); len(rs) != 0 {
				t.Fatalf("%+v", rs)
			}
			values["1"] = "Ana"
			obj, _, err := tp.BuildSend(values)
			if err != nil {
				t.Fatal(err)
			}
			body := `{"type":"body","parameters":[{"type":"text","text":"Ana"}]}`
			if string(obj) != `{"name":"room_ready","language":{"code":"en"},"components":[`+want+`,`+body+`]}` {
				t.Fatalf("got %s", obj)
			}
		})
	}
	f("image by link", `{"type":"HEADER","format":"IMAGE"}`, map[string]string{"header_media_url": "https://hotel.example/room.jpg"},
		`{"type":"header","parameters":[{"type":"image","image":{"link":"https://hotel.example/room.jpg"}}]}`)
	f("video by id", `{"type":"HEADER","format":"VIDEO"}`, map[string]string{"header_media_id": "1234567890"},
		`{"type":"header","parameters":[{"type":"video","video":{"id":"1234567890"}}]}`)
	f("document with a name", `{"type":"HEADER","format":"DOCUMENT"}`, map[string]string{"header_media_url": "https://hotel.example/i.pdf", "header_media_filename": "invoice.pdf"},
		`{"type":"header","parameters":[{"type":"document","document":{"link":"https://hotel.example/i.pdf","filename":"invoice.pdf"}}]}`)
	f("location", `{"type":"HEADER","format":"LOCATION"}`, map[string]string{"header_latitude": "52.5200", "header_longitude": "13.405", "header_location_name": "Grand Plaza"},
		`{"type":"header","parameters":[{"type":"location","location":{"latitude":52.52,"longitude":13.405,"name":"Grand Plaza"}}]}`)
	f("positional header text", `{"type":"HEADER","format":"TEXT","text":"Room {{1}}"}`, map[string]string{"header_1": "412"},
		`{"type":"header","parameters":[{"type":"text","text":"412"}]}`)
}

func TestBuildSendNamesEveryBadParameter(t *testing.T) {
	f := func(name string, values map[string]string, want ...string) {
		t.Run(name, func(t *testing.T) {
			tp := welcome(t)
			_, _, err := tp.BuildSend(values)
			var pe ParamErrors
			if !errors.As(err, &pe) {
				t.Fatalf("err %v", err)
			}
			var got []string
			for _, p := range pe {
				got = append(got, p.Param+": "+p.Problem)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
	ok := func(edit func(map[string]string)) map[string]string {
		m := map[string]string{"guest_name": "John", "hotel_name": "Grand Plaza", "room_number": "205", "checkin_time": "3 PM", "checkout_date": "Jan 18", "button_0": "RB1"}
		edit(m)
		return m
	}
	f("missing", ok(func(m map[string]string) { delete(m, "room_number") }), "room_number: is missing")
	f("extra", ok(func(m map[string]string) { m["guest_tier"] = "gold" }), "guest_tier: is not a parameter of template welcome_checkin (en)")
	f("empty", ok(func(m map[string]string) { m["hotel_name"] = "  " }), "hotel_name: is empty")
	f("line break", ok(func(m map[string]string) { m["hotel_name"] = "Grand\nPlaza" }), "hotel_name: may not hold line breaks, tabs or more than 4 spaces in a row")
	f("header too long", ok(func(m map[string]string) { m["guest_name"] = strings.Repeat("J", 60) }), "guest_name: makes the header longer than 60 characters")
	f("url button missing", ok(func(m map[string]string) { delete(m, "button_0") }), "button_0: is missing")
	f("several", ok(func(m map[string]string) { delete(m, "guest_name"); m["checkin_time"] = ""; m["x"] = "1" }),
		"guest_name: is missing", "checkin_time: is empty", "x: is not a parameter of template welcome_checkin (en)")

	img := parseTemplate(t, `{"name":"offer","language":"en","category":"MARKETING","components":[{"type":"HEADER","format":"IMAGE"},{"type":"BODY","text":"Hi {{1}}, enjoy our spa offer this week."}]}`)
	_, _, err := img.BuildSend(map[string]string{"1": "Ana", "header_media_url": "https://x.example/a.jpg", "header_media_id": "123"})
	if err == nil || !strings.Contains(err.Error(), "header_media_url and header_media_id are alternatives") {
		t.Fatalf("both media: %v", err)
	}
	_, _, err = img.BuildSend(map[string]string{"1": "Ana", "header_media_url": "javascript:alert(1)"})
	if err == nil || !strings.Contains(err.Error(), "header_media_url is not an http(s) URL") {
		t.Fatalf("bad url: %v", err)
	}
	_, _, err = img.BuildSend(map[string]string{"1": "Ana"})
	if err == nil || !strings.Contains(err.Error(), "header_media_url is missing") {
		t.Fatalf("no media: %v", err)
	}
}

func FuzzBuildSend(f *testing.F) {
	f.Add(`{"guest_name":"John","hotel_name":"Grand","room_number":"1","checkin_time":"3","checkout_date":"4","button_0":"x"}`)
	f.Add(`{"guest_name":"\u0000\"","hotel_name":"<b>&","room_number":"1","checkin_time":"3","checkout_date":"4","button_0":"x"}`)
	f.Add(`{"guest_name":"","x":"y"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var values map[string]string
		if json.Unmarshal([]byte(raw), &values) != nil {
			return
		}
		tp := welcome(t)
		obj, preview, err := tp.BuildSend(values)
		if err != nil {
			var pe ParamErrors
			if !errors.As(err, &pe) || len(pe) == 0 {
				t.Fatalf("error %v is not ParamErrors", err)
			}
			return
		}
		var got struct {
			Name       string `json:"name"`
			Components []struct {
				Type       string `json:"type"`
				Parameters []struct {
					ParameterName string `json:"parameter_name"`
					Text          string `json:"text"`
				} `json:"parameters"`
			} `json:"components"`
		}
		if err := json.Unmarshal(obj, &got); err != nil || got.Name != tp.Name {
			t.Fatalf("send object %s: %v", obj, err)
		}
		for _, c := range got.Components {
			if c.Type != "body" {
				continue
			}
			for _, p := range c.Parameters {
				if values[p.ParameterName] != p.Text {
					t.Fatalf("%s carries %q, given %q", p.ParameterName, p.Text, values[p.ParameterName])
				}
			}
		}
		if !strings.Contains(preview, values["hotel_name"]) {
			t.Fatalf("preview %q lacks %q", preview, values["hotel_name"])
		}
	})
}

func TestTemplateStatusFromMeta(t *testing.T) {
	for in, want := range map[string]TemplateStatus{"APPROVED": TemplateApproved, "rejected": TemplateRejected, "PAUSED": TemplatePaused,
		"DISABLED": TemplateDisabled, "REINSTATED": TemplateApproved, "PENDING_DELETION": TemplatePendingDeletion} {
		if got, ok := TemplateStatusFromMeta(in); !ok || got != want {
			t.Fatalf("%s: %s %v", in, got, ok)
		}
	}
	for _, in := range []string{"FLAGGED", "LOCKED", "", "whatever"} {
		if _, ok := TemplateStatusFromMeta(in); ok {
			t.Fatalf("%s changes the status", in)
		}
	}
}
