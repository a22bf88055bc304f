package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/wagate/wagate/internal/testwait"
	"github.com/wagate/wagate/provider"
)

// mediaURLAnswer is GET /{version}/{media-id}'s answer.
type mediaURLAnswer struct {
	URL      string `json:"url"`
	MIME     string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	FileSize int64  `json:"file_size"`
	ID       string `json:"id"`
	Product  string `json:"messaging_product"`
}

func mediaURLOf(t *testing.T, s *Server, id, query string) (answer, mediaURLAnswer) {
	t.Helper()
	a := do(t, "GET", s.URL()+"/v23.0/"+id+query, "Bearer "+testToken, "", nil)
	var m mediaURLAnswer
	if a.status == 200 {
		if err := json.Unmarshal(a.body, &m); err != nil {
			t.Fatalf("media url answer %s: %v", a.body, err)
		}
	}
	return a, m
}

// TestInboundMediaIsServedAsMetaServesIt: a guest's file posted in a
// webhook is downloadable as Meta's is, with the token only, and the
// webhook says what the download serves.
func TestInboundMediaIsServedAsMetaServesIt(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL})
	photo := append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte{7}, 3000)...)
	wamid, mediaID, err := s.InboundMessage(testPhoneID, "+4915112345678", "Ana", InboundMessage{Type: "image", Text: "The stain on the carpet", Data: photo})
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the inbound webhook", func() bool { return len(r.snapshot()) == 1 })
	sum := sha256.Sum256(photo)
	got := r.snapshot()[0].inbound
	want := []provider.Inbound{{ProviderMessageID: wamid, PhoneNumberID: testPhoneID, From: "+4915112345678", Name: "Ana", Type: "image",
		Text: "The stain on the carpet", MediaID: mediaID, MimeType: "image/jpeg", SHA256: base64.StdEncoding.EncodeToString(sum[:])}}
	if len(got) == 1 {
		want[0].AtMS = got[0].AtMS
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("webhook\n got %+v\nwant %+v", got, want)
	}

	a, m := mediaURLOf(t, s, mediaID, "?phone_number_id="+testPhoneID)
	if a.status != 200 || m.MIME != "image/jpeg" || m.SHA256 != hex.EncodeToString(sum[:]) || m.FileSize != int64(len(photo)) ||
		m.ID != mediaID || m.Product != "whatsapp" {
		t.Fatalf("media url: %d %s", a.status, a.body)
	}
	f := do(t, "GET", m.URL, "Bearer "+testToken, "", nil)
	if f.status != 200 || !bytes.Equal(f.body, photo) {
		t.Fatalf("download: %d, %d bytes", f.status, len(f.body))
	}

	tests := []struct {
		name, url, auth string
		status          int
	}{
		{"without the token", m.URL, "", http.StatusUnauthorized},
		{"with another token", m.URL, "Bearer nope", http.StatusUnauthorized},
		{"with its signature altered", m.URL[:len(m.URL)-1] + "x", "Bearer " + testToken, http.StatusNotFound},
		{"past its expiry", s.URL() + attachmentsPath + "?mid=" + mediaID + "&ext=1&hash=" + s.urlMAC(mediaID, 1), "Bearer " + testToken, http.StatusNotFound},
	}
	for _, tc := range tests {
		if a := do(t, "GET", tc.url, tc.auth, "", nil); a.status != tc.status {
			t.Errorf("download %s: %d, want %d", tc.name, a.status, tc.status)
		}
	}
	if st := s.MediaDownloads(); st.URLs != 1 || st.Downloads != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMediaURLRefusals(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL})
	_, id, err := s.InboundMessage(testPhoneID, "+4915112345678", "", InboundMessage{Type: "document", Filename: "Booking.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, query, auth string
		status, code          int
	}{
		{"unknown id", "1000000000000123", "", "Bearer " + testToken, 400, 100},
		{"another number's media", id, "?phone_number_id=" + testPhoneID2, "Bearer " + testToken, 400, 100},
		{"no token", id, "", "", 401, 190},
	}
	for _, tc := range tests {
		a := do(t, "GET", s.URL()+"/v23.0/"+tc.id+tc.query, tc.auth, "", nil)
		if a.status != tc.status || a.err.Code != tc.code {
			t.Errorf("%s: %d %s, want %d code %d", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
	// An outage of media alone answers 500 to both requests, then ends.
	_, m := mediaURLOf(t, s, id, "")
	s.SetMediaOutage(time.Now().Add(time.Hour))
	if a := do(t, "GET", s.URL()+"/v23.0/"+id, "Bearer "+testToken, "", nil); a.status != 500 || a.err.Code != 1 {
		t.Fatalf("media url in an outage: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", m.URL, "Bearer "+testToken, "", nil); a.status != 500 {
		t.Fatalf("download in an outage: %d", a.status)
	}
	if a := do(t, "POST", s.URL()+"/_sim/media/outage?seconds=0", "", "", nil); a.status != 200 {
		t.Fatalf("end the outage: %d %s", a.status, a.body)
	}
	if a := do(t, "GET", m.URL, "Bearer "+testToken, "", nil); a.status != 200 || !bytes.HasPrefix(a.body, []byte("%PDF-")) {
		t.Fatalf("download after the outage: %d %q", a.status, a.body)
	}
	if st := s.MediaDownloads(); st.Outage != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUploadsAreDownloadable: what a business uploads is served back.
func TestUploadsAreDownloadable(t *testing.T) {
	s := startSim(t, Config{})
	id := mediaUploaded(t, s, "application/pdf", simPDF)
	a, m := mediaURLOf(t, s, id, "")
	if a.status != 200 || m.MIME != "application/pdf" || m.FileSize != int64(len(simPDF)) {
		t.Fatalf("media url: %d %s", a.status, a.body)
	}
	if f := do(t, "GET", m.URL, "Bearer "+testToken, "", nil); f.status != 200 || !bytes.Equal(f.body, simPDF) {
		t.Fatalf("download: %d %q", f.status, f.body)
	}
}

// TestInboundMessageKinds: documents keep their file name, contacts their
// cards, and what Meta would never post is refused.
func TestInboundMessageKinds(t *testing.T) {
	r := newReceiver(t)
	s := startSim(t, Config{WebhookURL: r.srv.URL})
	a := do(t, "POST", s.URL()+"/_sim/inbound", "", "application/json", []byte(`{"phone_number_id":"`+testPhoneID+`","from":"+4915112345678",`+
		`"type":"document","filename":"Invoice 12.pdf","text":"for the company","data":"`+base64.StdEncoding.EncodeToString(simPDF)+`"}`))
	var ans struct {
		ID      string `json:"id"`
		MediaID string `json:"media_id"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &ans) != nil || ans.MediaID == "" {
		t.Fatalf("/_sim/inbound document: %d %s", a.status, a.body)
	}
	if _, _, err := s.InboundMessage(testPhoneID, "+4915112345678", "", InboundMessage{Type: "contacts",
		Contacts: json.RawMessage(`[{"name":{"formatted_name":"Kerry Fitzgerald"},"phones":[{"phone":"+16505551234","type":"CELL"}]}]`)}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "2 inbound webhooks", func() bool { return len(r.snapshot()) == 2 })
	byType := map[string]provider.Inbound{}
	for _, p := range r.snapshot() {
		for _, in := range p.inbound {
			byType[in.Type] = in
		}
	}
	if d := byType["document"]; d.Filename != "Invoice 12.pdf" || d.Text != "for the company" || d.MimeType != "application/pdf" || d.MediaID != ans.MediaID {
		t.Fatalf("document %+v", d)
	}
	wantCards := []provider.Contact{{Name: provider.ContactName{FormattedName: "Kerry Fitzgerald"},
		Phones: []provider.ContactPhone{{Phone: "+16505551234", Type: "CELL"}}}}
	if c := byType["contacts"]; !reflect.DeepEqual(c.Contacts, wantCards) {
		t.Fatalf("contacts %+v", c)
	}

	for i, m := range []InboundMessage{
		{Type: "gif"},
		{Type: "audio", Text: "audio takes no caption"},
		{Type: "image", Filename: "x.jpg"},
		{Type: "image", MIME: "not a type"},
		{Type: "contacts"},
		{Type: "contacts", Contacts: json.RawMessage(`{"name":{}}`)},
		{Type: "image", Data: make([]byte, maxInboundMedia+1)},
	} {
		if _, _, err := s.InboundMessage(testPhoneID, "+4915112345678", "", m); err == nil {
			t.Errorf("case %d (%s) posted", i, m.Type)
		}
	}
	if n := s.Stats().InboundPosted; n != 2 {
		t.Fatalf("posted %d inbound messages, want 2", n)
	}
}
