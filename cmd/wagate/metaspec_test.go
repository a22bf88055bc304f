package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/metaspec"
	"github.com/wagate/wagate/provider/sim"
)

// metaSpecCase is one message sent through the API whose request at the
// simulator is checked against Meta's spec.
type metaSpecCase struct {
	name, path string
	// body is the API request; a func so that a case can use what an
	// earlier one sent (the reaction's target).
	body func() string
	// wantType is the send body's type; wantSub the interactive type or
	// the template name, which type alone does not tell apart.
	wantType, wantSub string
}

// TestMetaSpecConformance is issue 4's check: the request that reaches the
// provider simulator for each message type the API offers is the one
// Meta documents, by Meta's own OpenAPI spec (internal/metaspec, with the
// spec's defects patched).
func TestMetaSpecConformance(t *testing.T) {
	spec, err := metaspec.Load()
	if err != nil {
		t.Fatal(err)
	}
	tg := startTestGateway(t, sim.Delays{})
	// The demo hotel's approved templates (demoCatalogue), for templates/send.
	if err := tg.gw.store.PutTemplates(context.Background(), devTenant, catalogue(t)); err != nil {
		t.Fatal(err)
	}
	const guest = "+14155550142"
	tg.guestWrites(guest, "Hi, I land at 9pm tonight. Is late check-in fine?")

	// uploaded are media ids of files uploaded through the API.
	uploaded := map[string]string{
		"image":    metaSpecUpload(tg, "room_key_info.png", "image", metaSpecPNG(t)),
		"document": metaSpecUpload(tg, "hotel_amenities_guide.pdf", "document", []byte("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")),
	}

	// sent maps each case to its wagate message id, for the reaction.
	sent := map[string]string{}
	send := func(c metaSpecCase) string {
		return `{"guest_phone":"` + guest + `",` + c.body()[1:]
	}
	cases := []metaSpecCase{
		{name: "text", path: "messages/send", wantType: "text", body: func() string {
			return `{"message_type":"text","content":{"text":"Welcome to Grand Plaza Hotel! How can we assist you today?"},"conversation_id":"conv_abc123","staff_member_id":"staff_456"}`
		}},
		{name: "text with preview_url", path: "messages/send", wantType: "text", body: func() string {
			return `{"message_type":"text","content":{"text":"Check in online before you arrive: https://grandplaza.example/checkin/RB123456","preview_url":true}}`
		}},
		// Seed 001's buttons and list, exactly.
		{name: "interactive buttons", path: "messages/send-interactive", wantType: "interactive", wantSub: "button", body: func() string {
			return `{"interactive_type":"buttons","content":{"text":"How would you like to extend your stay?","buttons":[` +
				`{"id":"extend_1_night","title":"1 More Night"},{"id":"extend_2_nights","title":"2 More Nights"},{"id":"call_front_desk","title":"Call Front Desk"}]}}`
		}},
		{name: "interactive list", path: "messages/send-interactive", wantType: "interactive", wantSub: "list", body: func() string {
			return `{"interactive_type":"list","content":{"text":"What service would you like to request?","button_text":"View Services","sections":[` +
				`{"title":"Room Services","rows":[` +
				`{"id":"housekeeping","title":"Housekeeping","description":"Extra towels, cleaning"},` +
				`{"id":"room_service","title":"Room Service","description":"Food and beverage delivery"},` +
				`{"id":"maintenance","title":"Maintenance","description":"Technical issues"}]},` +
				`{"title":"Guest Services","rows":[` +
				`{"id":"concierge","title":"Concierge","description":"Local recommendations, bookings"},` +
				`{"id":"transportation","title":"Transportation","description":"Taxi, shuttle service"}]}]}}`
		}},
		{name: "interactive cta_url", path: "messages/send-interactive", wantType: "interactive", wantSub: "cta_url", body: func() string {
			return `{"interactive_type":"cta_url","content":{"header":"Your booking RB123456","text":"Manage your booking, add breakfast or change your dates online.",` +
				`"footer":"Grand Plaza Hotel","display_text":"Manage booking","url":"https://grandplaza.example/booking/RB123456"}}`
		}},
		{name: "interactive buttons with an image header", path: "messages/send-interactive", wantType: "interactive", wantSub: "button", body: func() string {
			return `{"interactive_type":"buttons","content":{"header":{"type":"image","link":"https://grandplaza.example/img/suite.jpg"},` +
				`"text":"Upgrade to the Skyline Suite tonight for $80?","footer":"Offer ends at 6 PM",` +
				`"buttons":[{"id":"upgrade_yes","title":"Yes, upgrade"},{"id":"upgrade_no","title":"No, thanks"}]}}`
		}},
		{name: "location", path: "messages/send", wantType: "location", body: func() string {
			return `{"message_type":"location","content":{"latitude":37.7936,"longitude":-122.3958,"name":"Grand Plaza Hotel","address":"1 Market St, San Francisco, CA 94105"}}`
		}},
		{name: "contacts", path: "messages/send", wantType: "contacts", body: func() string {
			return `{"message_type":"contacts","content":{"contacts":[{` +
				`"name":{"formatted_name":"Grand Plaza Front Desk","first_name":"Front","last_name":"Desk"},` +
				`"org":{"company":"Grand Plaza Hotel","department":"Front Office","title":"Reception"},` +
				`"phones":[{"phone":"+1 (415) 555-0123","type":"WORK","wa_id":"14155550123"},{"phone":"+14155550199","type":"CELL"}],` +
				`"emails":[{"email":"frontdesk@grandplaza.example","type":"WORK"}],` +
				`"urls":[{"url":"https://grandplaza.example","type":"WORK"}],` +
				`"addresses":[{"street":"1 Market St","city":"San Francisco","state":"CA","zip":"94105","country":"United States","country_code":"us","type":"WORK"}],` +
				`"birthday":"1984-06-30"}]}}`
		}},
		{name: "reaction", path: "messages/send", wantType: "reaction", body: func() string {
			return `{"message_type":"reaction","content":{"message_id":"` + sent["text"] + `","emoji":"👍"}}`
		}},
		// Seed 001's template call, exactly.
		{name: "template welcome_checkin", path: "templates/send", wantType: "template", wantSub: "welcome_checkin", body: func() string {
			return `{"template_name":"welcome_checkin","language":"en","parameters":{"guest_name":"John Smith","hotel_name":"Grand Plaza Hotel",` +
				`"room_number":"205","checkin_time":"3:00 PM","checkout_date":"January 18, 2024"},` +
				`"conversation_metadata":{"booking_reference":"RB123456","guest_tier":"gold_member"}}`
		}},
		// A button component: its index is what Meta's pattern got wrong.
		{name: "template with a URL button", path: "templates/send", wantType: "template", wantSub: "post_stay_feedback", body: func() string {
			return `{"template_name":"post_stay_feedback","language":"en","parameters":{"guest_name":"John Smith","hotel_name":"Grand Plaza Hotel","button_0":"RB123456"}}`
		}},
		// Seed 001's media sends: uploaded first (sent by Meta's id of the
		// upload), and by link.
		{name: "uploaded image with caption", path: "messages/send-media", wantType: "image", body: func() string {
			return `{"media_id":"` + uploaded["image"] + `","media_type":"image",` +
				`"caption":"Here is your digital room key information. Tap your phone on the door reader to access your room.","conversation_id":"conv_abc123"}`
		}},
		{name: "uploaded document with filename", path: "messages/send-media", wantType: "document", body: func() string {
			return `{"media_id":"` + uploaded["document"] + `","media_type":"document",` +
				`"filename":"hotel_amenities_guide.pdf","caption":"Complete guide to all hotel amenities and services"}`
		}},
		{name: "image with caption", path: "messages/send-media", wantType: "image", body: func() string {
			return `{"media_url":"https://grandplaza.example/media/room_key_info.jpg","media_type":"image",` +
				`"caption":"Here is your digital room key information. Tap your phone on the door reader to access your room.","conversation_id":"conv_abc123"}`
		}},
		{name: "document with filename", path: "messages/send-media", wantType: "document", body: func() string {
			return `{"media_url":"https://grandplaza.example/media/hotel_amenities_guide.pdf","media_type":"document",` +
				`"filename":"hotel_amenities_guide.pdf","caption":"Complete guide to all hotel amenities and services"}`
		}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			req := send(c)
			code, v := tg.call("POST", "/api/v1/whatsapp/"+c.path, req)
			id, _ := v["message_id"].(string)
			if code != 202 || id == "" {
				t.Fatalf("POST %s %s: %d %v", c.path, req, code, v)
			}
			sent[c.name] = id
			body := metaSpecSentBody(tg, id)
			err := spec.ValidateSendBody(body)
			if err != nil {
				t.Errorf("Meta's spec refuses the %s request the simulator received:\n%s\n%v", c.name, body, err)
			}
			var got struct {
				To          string `json:"to"`
				Type        string `json:"type"`
				Interactive struct {
					Type string `json:"type"`
				} `json:"interactive"`
				Template struct {
					Name string `json:"name"`
				} `json:"template"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("the simulator received %s: %v", body, err)
			}
			sub := got.Interactive.Type + got.Template.Name
			if got.To != guest[1:] || got.Type != c.wantType || sub != c.wantSub {
				t.Errorf("the simulator received to %q, type %q (%q), want %q, %q (%q):\n%s",
					got.To, got.Type, sub, guest[1:], c.wantType, c.wantSub, body)
			}
			if c.name == "reaction" {
				// The reaction names the WhatsApp id of the message it is on.
				if want := metaSpecProviderID(tg, sent["text"]); !strings.Contains(string(body), `"message_id":"`+want+`"`) {
					t.Errorf("the reaction is not on the text message %s (%s):\n%s", sent["text"], want, body)
				}
			}
		})
	}
}

// metaSpecSentBody waits until message id is sent and returns the request body
// the simulator received for it.
func metaSpecSentBody(tg *testGateway, id string) []byte {
	tg.t.Helper()
	wamid := metaSpecProviderID(tg, id)
	for _, r := range tg.sim.Requests(devPhoneID) {
		if r.WAMID == wamid {
			return r.Body
		}
	}
	tg.t.Fatalf("message %s went out as %s, but the simulator recorded no send with that id", id, wamid)
	return nil
}

// metaSpecProviderID waits until message id is sent and returns its WhatsApp id.
func metaSpecProviderID(tg *testGateway, id string) string {
	tg.t.Helper()
	var st map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, st = tg.call("GET", "/api/v1/whatsapp/messages/"+id+"/status", "")
		switch st["status"] {
		case "sent", "delivered", "read":
			if wamid, _ := st["provider_message_id"].(string); wamid != "" {
				return wamid
			}
		case "failed", "expired":
			tg.t.Fatalf("message %s ended %s: %v", id, st["status"], st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	tg.t.Fatalf("message %s was not sent within 10s: %v", id, st)
	return ""
}

// metaSpecPNG is a small real PNG.
func metaSpecPNG(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// metaSpecUpload uploads a file through the API and returns its media id.
func metaSpecUpload(tg *testGateway, name, mediaType string, data []byte) string {
	tg.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("media", name)
	fw.Write(data)
	w.WriteField("media_type", mediaType)
	w.Close()
	code, v := mediaAPICall(tg.t, tg.api+"/api/v1/whatsapp/media/upload", w.FormDataContentType(), body.Bytes())
	if code != 201 {
		tg.t.Fatalf("upload %s: %d %v", name, code, v)
	}
	return v["media_id"].(string)
}
