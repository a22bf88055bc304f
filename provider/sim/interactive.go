package sim

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

type interactive struct {
	Type string `json:"type"`
	Body *struct {
		Text string `json:"text"`
	} `json:"body"`
	Footer *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Action *struct {
		Buttons  []json.RawMessage `json:"buttons"`
		Button   string            `json:"button"`
		Sections []struct {
			Rows []json.RawMessage `json:"rows"`
		} `json:"sections"`
		Name string `json:"name"`
	} `json:"action"`
}

type locationObject struct {
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

type reactionObject struct {
	MessageID string  `json:"message_id"`
	Emoji     *string `json:"emoji"`
}

var interactiveTypes = map[string]bool{
	"button": true, "list": true, "cta_url": true, "product": true, "product_list": true, "flow": true,
	"catalog_message": true, "location_request_message": true, "address_message": true, "call_permission_request": true,
}

func validateInteractive(in *interactive) *apiError {
	req := func(p string) *apiError { e := errRequired(p); return &e }
	switch {
	case in == nil:
		return req("interactive")
	case in.Type == "":
		return req("interactive['type']")
	case !interactiveTypes[in.Type]:
		e := errParam("(#100) Param interactive['type'] is not a valid interactive type - got \""+in.Type+"\".", "Unsupported interactive type.")
		return &e
	case in.Action == nil:
		return req("interactive['action']")
	case in.Body != nil && utf8.RuneCountInString(in.Body.Text) > 1024:
		e := errParam("(#100) Param interactive['body']['text'] must be at most 1024 characters long.", "Body text is too long.")
		return &e
	case in.Footer != nil && utf8.RuneCountInString(in.Footer.Text) > 60:
		e := errParam("(#100) Param interactive['footer']['text'] must be at most 60 characters long.", "Footer text is too long.")
		return &e
	}
	a := in.Action
	switch in.Type {
	case "button":
		if in.Body == nil || in.Body.Text == "" {
			return req("interactive['body']['text']")
		}
		if n := len(a.Buttons); n < 1 || n > 3 {
			e := errParam("(#100) Param interactive['action']['buttons'] must have between 1 and 3 elements.", "A button message has 1 to 3 buttons.")
			return &e
		}
	case "list":
		if in.Body == nil || in.Body.Text == "" {
			return req("interactive['body']['text']")
		}
		if a.Button == "" {
			return req("interactive['action']['button']")
		}
		rows := 0
		for _, s := range a.Sections {
			rows += len(s.Rows)
		}
		if n := len(a.Sections); n < 1 || n > 10 || rows < 1 || rows > 10 {
			e := errParam("(#100) Param interactive['action']['sections'] must have 1 to 10 sections and 1 to 10 rows in all.", "Too many or too few list rows.")
			return &e
		}
	}
	return nil
}

func validateLocation(l *locationObject) *apiError {
	switch {
	case l == nil:
		e := errRequired("location")
		return &e
	case l.Latitude == nil:
		e := errRequired("location['latitude']")
		return &e
	case l.Longitude == nil:
		e := errRequired("location['longitude']")
		return &e
	}
	return nil
}

func validateContacts(c json.RawMessage) *apiError {
	if c := bytes.TrimSpace(c); len(c) < 2 || c[0] != '[' || string(c) == "[]" {
		e := errRequired("contacts")
		return &e
	}
	return nil
}

func validateReaction(r *reactionObject) *apiError {
	switch {
	case r == nil:
		e := errRequired("reaction")
		return &e
	case r.MessageID == "":
		e := errRequired("reaction['message_id']")
		return &e
	case r.Emoji == nil:
		e := errRequired("reaction['emoji']")
		return &e
	}
	return nil
}
