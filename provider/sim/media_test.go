package sim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"mime/multipart"
	"regexp"
	"strings"
	"testing"
)

// uploadForm builds an upload body: the fields, then file (when not nil)
// under the name file.
func mediaUploadForm(t testing.TB, fields map[string]string, file []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if file != nil {
		fw, err := w.CreateFormFile("file", "upload.bin")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(file)
	}
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func mediaUploadTo(t testing.TB, s *Server, phoneID, auth string, fields map[string]string, file []byte) answer {
	t.Helper()
	body, ct := mediaUploadForm(t, fields, file)
	return do(t, "POST", s.URL()+"/v23.0/"+phoneID+"/media", auth, ct, body)
}

// uploaded uploads file as type mt and returns the id.
func mediaUploaded(t testing.TB, s *Server, mt string, file []byte) string {
	t.Helper()
	a := mediaUploadTo(t, s, testPhoneID, "Bearer "+testToken, map[string]string{"messaging_product": "whatsapp", "type": mt}, file)
	var ans struct {
		ID string `json:"id"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &ans) != nil || ans.ID == "" {
		t.Fatalf("upload %s: %d %s", mt, a.status, a.body)
	}
	return ans.ID
}

var (
	simJPEG = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9")
	simPNG  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00")
	simMP3  = append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), 0xff, 0xfb, 0x90, 0x64)
	simPDF  = []byte("%PDF-1.4\n%%EOF\n")
	simWAV  = []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
)

// webpOf is a WebP of size bytes, animated or still.
func simWebP(size int, animated bool) []byte {
	b := make([]byte, size)
	copy(b, "RIFF\x00\x00\x00\x00WEBP")
	if animated {
		copy(b[12:], "VP8X\x0a\x00\x00\x00\x02")
	} else {
		copy(b[12:], "VP8L")
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(size-8))
	return b
}

var simMediaIDRE = regexp.MustCompile(`^[0-9]{16}$`)

func TestMediaUploadValidation(t *testing.T) {
	s := startSim(t, Config{})
	bearer := "Bearer " + testToken
	wa := func(mt string) map[string]string {
		return map[string]string{"messaging_product": "whatsapp", "type": mt}
	}
	f := func(name, phoneID, auth string, fields map[string]string, file []byte, status, code int, message string) {
		t.Helper()
		a := mediaUploadTo(t, s, phoneID, auth, fields, file)
		if status == 200 {
			var ans struct {
				ID string `json:"id"`
			}
			if a.status != 200 || json.Unmarshal(a.body, &ans) != nil || !simMediaIDRE.MatchString(ans.ID) {
				t.Fatalf("%s: %d %s", name, a.status, a.body)
			}
			return
		}
		if a.status != status || a.err.Code != code || !strings.Contains(a.err.Message+" | "+a.err.ErrorData.Details, message) {
			t.Fatalf("%s: got %d %s, want %d code %d %q", name, a.status, a.body, status, code, message)
		}
		if a.err.Type == "" || a.err.TraceID == "" || a.err.ErrorData.MessagingProduct != "whatsapp" {
			t.Fatalf("%s: not Meta's error shape: %s", name, a.body)
		}
	}
	f("jpeg", testPhoneID, bearer, wa("image/jpeg"), simJPEG, 200, 0, "")
	f("png", testPhoneID, bearer, wa("image/png"), simPNG, 200, 0, "")
	f("mp3", testPhoneID, bearer, wa("audio/mpeg"), simMP3, 200, 0, "")
	f("opus with codecs", testPhoneID, bearer, wa("audio/ogg; codecs=opus"), []byte("OggS\x00\x02"), 200, 0, "")
	f("pdf", testPhoneID, bearer, wa("application/pdf"), simPDF, 200, 0, "")
	f("animated sticker of 150 KB", testPhoneID, bearer, wa("image/webp"), simWebP(150<<10, true), 200, 0, "")
	accepted := int64(6)

	f("no token", testPhoneID, "", wa("image/jpeg"), simJPEG, 401, 190, "Invalid OAuth access token")
	f("unknown number", "999", bearer, wa("image/jpeg"), simJPEG, 400, 100, "Object with ID '999' does not exist")
	f("no messaging_product", testPhoneID, bearer, map[string]string{"type": "image/jpeg"}, simJPEG, 400, 100, "The parameter messaging_product is required.")
	f("no type", testPhoneID, bearer, map[string]string{"messaging_product": "whatsapp"}, simJPEG, 400, 100, "The parameter type is required.")
	f("no file", testPhoneID, bearer, wa("image/jpeg"), nil, 400, 100, "The parameter file is required.")
	f("wav", testPhoneID, bearer, wa("audio/wav"), simWAV, 400, 100, "Received file of type 'audio/wav'")
	f("type shorthand", testPhoneID, bearer, wa("jpeg"), simJPEG, 400, 100, "must be a file with one of the following types: audio/aac")
	f("png bytes as jpeg", testPhoneID, bearer, wa("image/jpeg"), simPNG, 400, 100, "Param file must be a file of type image/jpeg.")
	f("wav bytes as mp3", testPhoneID, bearer, wa("audio/mpeg"), simWAV, 400, 100, "must be a file of type audio/mpeg")
	f("empty", testPhoneID, bearer, wa("application/pdf"), []byte{}, 400, 100, "non-empty")
	f("still sticker over 100 KB", testPhoneID, bearer, wa("image/webp"), simWebP(100<<10+1, false), 400, 131053, "the limit is 102400 bytes")
	f("animated sticker over 500 KB", testPhoneID, bearer, wa("image/webp"), simWebP(500<<10+1, true), 400, 131053, "the limit is 512000 bytes")
	if a := do(t, "POST", s.URL()+"/v23.0/"+testPhoneID+"/media", bearer, "application/json", []byte(`{"messaging_product":"whatsapp"}`)); a.status != 400 || a.err.Code != 100 {
		t.Fatalf("not multipart: %d %s", a.status, a.body)
	}
	if got := s.Stats().MediaUploads; got != accepted {
		t.Fatalf("%d uploads counted, want the %d accepted", got, accepted)
	}
}

func TestSendsUseOnlyMediaThisServerIssued(t *testing.T) {
	s := startSim(t, Config{RecordRequests: 10})
	img := mediaUploaded(t, s, "image/jpeg", simJPEG)
	audio := mediaUploaded(t, s, "audio/mpeg", simMP3)
	doc := mediaUploaded(t, s, "application/pdf", simPDF)
	sticker := mediaUploaded(t, s, "image/webp", simWebP(1000, false))
	other := startSim(t, Config{})
	foreign := mediaUploaded(t, other, "image/jpeg", simJPEG)

	msg := func(typ, object string) string {
		return `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"` + typ + `","` + typ + `":` + object + `}`
	}
	ok := func(name, body string) {
		t.Helper()
		if a := send(t, s, body); a.status != 200 {
			t.Fatalf("%s: %d %s", name, a.status, a.body)
		}
	}
	refused := func(name, body, want string) {
		t.Helper()
		a := send(t, s, body)
		if a.status != 400 || a.err.Code != 100 || !strings.Contains(a.err.Message+" | "+a.err.ErrorData.Details, want) {
			t.Fatalf("%s: %d %s, want 100 %q", name, a.status, a.body, want)
		}
	}
	ok("image by id", msg("image", `{"id":"`+img+`","caption":"Your room key"}`))
	ok("document by id", msg("document", `{"id":"`+doc+`","caption":"Guide","filename":"guide.pdf"}`))
	ok("audio by id", msg("audio", `{"id":"`+audio+`"}`))
	ok("sticker by id", msg("sticker", `{"id":"`+sticker+`"}`))
	ok("image by link", msg("image", `{"link":"https://cdn.example.com/spa.jpg"}`))

	refused("never issued", msg("image", `{"id":"1003383421387256"}`), "Param image['id'] is not a valid whatsapp business account media attachment ID")
	refused("another server's id", msg("image", `{"id":"`+foreign+`"}`), "not a valid whatsapp business account media attachment ID")
	last := img[len(img)-1]
	tampered := img[:len(img)-1] + string('0'+(last-'0'+1)%10)
	refused("tampered id", msg("image", `{"id":"`+tampered+`"}`), "not a valid whatsapp business account media attachment ID")
	refused("not digits", msg("image", `{"id":"med_0123456789abcdefghjkmnpq"}`), "not a valid whatsapp business account media attachment ID")
	refused("image as document", msg("document", `{"id":"`+img+`"}`), "is media of type image/jpeg, which cannot be sent as document")
	refused("pdf as image", msg("image", `{"id":"`+doc+`"}`), "cannot be sent as image")
	refused("webp as image", msg("image", `{"id":"`+sticker+`"}`), "cannot be sent as image")
	refused("caption on audio", msg("audio", `{"id":"`+audio+`","caption":"hi"}`), "Param audio['caption'] is not a valid parameter.")
	refused("caption on sticker", msg("sticker", `{"id":"`+sticker+`","caption":"hi"}`), "Param sticker['caption']")
	refused("filename on image", msg("image", `{"id":"`+img+`","filename":"a.jpg"}`), "Param image['filename'] is not a valid parameter.")
	refused("ftp link", msg("video", `{"link":"ftp://cdn.example.com/tour.mp4"}`), "Param video['link'] must be a valid URL.")

	// What was accepted reached the number as sent.
	reqs := s.Requests(testPhoneID)
	if len(reqs) != 5 || string(reqs[0].Body) != msg("image", `{"id":"`+img+`","caption":"Your room key"}`) {
		t.Fatalf("%d recorded; first %s", len(reqs), reqs[0].Body)
	}
}

func TestMediaIDsEncodeTheirType(t *testing.T) {
	s := startSim(t, Config{})
	for i, mt := range metaMediaTypes {
		id := s.newMediaID(i)
		if !simMediaIDRE.MatchString(id) {
			t.Fatalf("%s: id %q is not 16 digits", mt, id)
		}
		if got, ok := s.issuedMedia(id); !ok || got != mt {
			t.Fatalf("%s: id %s reads back as %q %v", mt, id, got, ok)
		}
	}
	for _, bad := range []string{"", "0", "9999999999999999", "10000000000000000", "abcdefghijklmnop"} {
		if _, ok := s.issuedMedia(bad); ok {
			t.Fatalf("%q taken as issued", bad)
		}
	}
}
