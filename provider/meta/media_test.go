package meta_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
)

const (
	sender1 = "+15550001000"
	phone1  = "100000000000001"
	sender2 = "+15550001001"
	phone2  = "100000000000002"
	guest   = "+4915112345678"
)

// memSource is a MediaSource over maps, counting what it is asked.
type memSource struct {
	mu    sync.Mutex
	media map[string]meta.Media
	files map[string][]byte // by sha256
	cache map[string]string // account + " " + sha256 → Meta's id
}

func newMemSource() *memSource {
	return &memSource{media: map[string]meta.Media{}, files: map[string][]byte{}, cache: map[string]string{}}
}

// add makes a wagate media id for data of type mime.
func (s *memSource) add(id, mime, filename string, data []byte) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[h] = data
	s.media[id] = meta.Media{SHA256: h, MIME: mime, Size: int64(len(data)), Filename: filename,
		Open: func() (io.ReadCloser, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			b, ok := s.files[h]
			if !ok {
				return nil, os.ErrNotExist
			}
			return io.NopCloser(bytes.NewReader(b)), nil
		}}
}

func (s *memSource) Media(_ context.Context, id string) (meta.Media, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok {
		return meta.Media{}, fmt.Errorf("media %s: %w", id, meta.ErrMediaNotFound)
	}
	return m, nil
}

func (s *memSource) ProviderMediaID(_ context.Context, account, sum string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache[account+" "+sum], nil
}

func (s *memSource) SetProviderMediaID(_ context.Context, account, sum, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		delete(s.cache, account+" "+sum)
	} else {
		s.cache[account+" "+sum] = id
	}
	return nil
}

func (s *memSource) cached(account string, data []byte) string {
	sum := sha256.Sum256(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache[account+" "+hex.EncodeToString(sum[:])]
}

// jpegData is a JPEG's start, as much as the simulator sniffs.
var jpegData = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + "room key card" + "\xff\xd9")

// startSim runs the simulator (no webhooks) with two numbers.
func startSim(t *testing.T) *sim.Server {
	t.Helper()
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0", RecordRequests: 100, Numbers: []sim.Number{
		{PhoneNumberID: phone1, DisplayPhoneNumber: "15550001000", WABAID: "200000000000001"},
		{PhoneNumberID: phone2, DisplayPhoneNumber: "15550001001", WABAID: "200000000000001"},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func newClient(t *testing.T, s *sim.Server, src meta.MediaSource) *meta.Client {
	t.Helper()
	cfg := meta.Config{BaseURL: s.URL(), AccessToken: sim.DefaultAccessToken,
		PhoneNumberIDs: map[string]string{sender1: phone1, sender2: phone2}, Timeout: 5 * time.Second}
	if src != nil {
		cfg.Media = src
	}
	c, err := meta.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func mediaMessage(from string, typ message.Type, content string) *message.Message {
	return &message.Message{ID: "msg_test", Sender: from, Recipient: guest, Type: typ, Content: []byte(content)}
}

func lastBody(t *testing.T, s *sim.Server, phone string) string {
	t.Helper()
	reqs := s.Requests(phone)
	if len(reqs) == 0 {
		t.Fatal("no send reached the simulator")
	}
	return string(reqs[len(reqs)-1].Body)
}

func TestMediaIsUploadedOnceAndReused(t *testing.T) {
	s := startSim(t)
	src := newMemSource()
	src.add("med_roomkey0000000000000000000", "image/jpeg", "room_key_info.jpg", jpegData)
	src.add("med_roomkeycopy00000000000000", "image/jpeg", "copy.jpg", jpegData) // the same bytes, uploaded again
	c := newClient(t, s, src)
	ctx := context.Background()

	m := mediaMessage(sender1, message.TypeImage, `{"id":"med_roomkey0000000000000000000","caption":"Your room key"}`)
	res, err := c.Send(ctx, m)
	if err != nil || res.ProviderMessageID == "" {
		t.Fatalf("first send: %+v %v", res, err)
	}
	if n := s.Stats().MediaUploads; n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
	metaID := src.cached("meta/"+phone1, jpegData)
	if metaID == "" {
		t.Fatal("Meta's id was not remembered")
	}
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"image","image":{"id":"` + metaID + `","caption":"Your room key"}}`
	if got := lastBody(t, s, phone1); got != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
	if string(m.Content) != `{"id":"med_roomkey0000000000000000000","caption":"Your room key"}` {
		t.Fatalf("the message's own content changed: %s", m.Content)
	}

	// The same bytes, by the same id or another upload's, reuse Meta's id.
	for _, id := range []string{"med_roomkey0000000000000000000", "med_roomkeycopy00000000000000"} {
		if _, err := c.Send(ctx, mediaMessage(sender1, message.TypeImage, `{"id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
		if got := lastBody(t, s, phone1); got != `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"image","image":{"id":"`+metaID+`"}}` {
			t.Fatalf("reuse body %s", got)
		}
	}
	if n := s.Stats().MediaUploads; n != 1 {
		t.Fatalf("%d uploads after reuse, want 1", n)
	}
	// Meta lets only the number that uploaded media send it: another
	// number uploads its own.
	if _, err := c.Send(ctx, mediaMessage(sender2, message.TypeImage, `{"id":"med_roomkey0000000000000000000"}`)); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().MediaUploads; n != 2 || src.cached("meta/"+phone2, jpegData) == "" {
		t.Fatalf("%d uploads for two numbers, want 2", n)
	}
}

func TestDocumentKeepsItsFilenameAndLinksPassThrough(t *testing.T) {
	s := startSim(t)
	src := newMemSource()
	src.add("med_guide00000000000000000000", "application/pdf", "guide.pdf", []byte("%PDF-1.4\n%%EOF\n"))
	c := newClient(t, s, src)
	ctx := context.Background()
	if _, err := c.Send(ctx, mediaMessage(sender1, message.TypeDocument, `{"id":"med_guide00000000000000000000","caption":"Guide","filename":"hotel_amenities_guide.pdf"}`)); err != nil {
		t.Fatal(err)
	}
	id := src.cached("meta/"+phone1, []byte("%PDF-1.4\n%%EOF\n"))
	if got := lastBody(t, s, phone1); got != `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"document","document":{"id":"`+id+`","caption":"Guide","filename":"hotel_amenities_guide.pdf"}}` {
		t.Fatalf("body %s", got)
	}
	const link = `{"link":"https://cdn.grandplaza.example/spa.jpg","caption":"Spa menu"}`
	if _, err := c.Send(ctx, mediaMessage(sender1, message.TypeImage, link)); err != nil {
		t.Fatal(err)
	}
	if got := lastBody(t, s, phone1); got != `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"image","image":`+link+`}` {
		t.Fatalf("link body %s", got)
	}
	if n := s.Stats().MediaUploads; n != 1 {
		t.Fatalf("%d uploads, want 1 (links upload nothing)", n)
	}
}

func TestConcurrentSendsShareOneUpload(t *testing.T) {
	s := startSim(t)
	src := newMemSource()
	src.add("med_campaign000000000000000000", "image/jpeg", "offer.jpg", jpegData)
	c := newClient(t, s, src)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Send(context.Background(), mediaMessage(sender1, message.TypeImage, `{"id":"med_campaign000000000000000000"}`)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, sent := s.Stats().MediaUploads, s.Stats().Accepted; n != 1 || sent != 20 {
		t.Fatalf("%d uploads for %d sends, want 1 for 20", n, sent)
	}
}

func TestMediaFailuresHaveTheirClass(t *testing.T) {
	s := startSim(t)
	src := newMemSource()
	src.add("med_pngthatisjpeg000000000000", "image/png", "x.png", jpegData) // the simulator sniffs the lie
	src.add("med_gone000000000000000000000", "image/jpeg", "gone.jpg", []byte("\xff\xd8\xff gone"))
	c := newClient(t, s, src)
	ctx := context.Background()
	class := func(name string, err error, want provider.Class, code int) {
		t.Helper()
		var pe *provider.Error
		if provider.ClassOf(err) != want || (code != 0 && (!errors.As(err, &pe) || pe.Code != code)) {
			t.Fatalf("%s: %v (class %v), want %v code %d", name, err, provider.ClassOf(err), want, code)
		}
	}
	_, err := c.Send(ctx, mediaMessage(sender1, message.TypeImage, `{"id":"med_unknown000000000000000000"}`))
	class("unknown media", err, provider.ClassPermanent, 0)

	_, err = c.Send(ctx, mediaMessage(sender1, message.TypeImage, `{"id":"med_pngthatisjpeg000000000000"}`))
	class("upload refused", err, provider.ClassPermanent, 100)
	var pe *provider.Error
	if errors.As(err, &pe); pe == nil || pe.Title[:13] != "media upload:" {
		t.Fatalf("refusal does not say it was the upload: %v", err)
	}

	src.mu.Lock()
	delete(src.files, src.media["med_gone000000000000000000000"].SHA256)
	src.mu.Unlock()
	_, err = c.Send(ctx, mediaMessage(sender1, message.TypeImage, `{"id":"med_gone000000000000000000000"}`))
	class("file gone", err, provider.ClassPermanent, 0)

	s.SetOutage(time.Now().Add(time.Minute))
	src.add("med_outage0000000000000000000", "image/jpeg", "o.jpg", append([]byte("\xff\xd8\xff"), "outage"...))
	_, err = c.Send(ctx, mediaMessage(sender1, message.TypeImage, `{"id":"med_outage0000000000000000000"}`))
	class("upload during an outage", err, provider.ClassRetry, 2)
	s.SetOutage(time.Time{})

	if st := s.Stats(); st.Accepted != 0 || st.MediaUploads != 0 {
		t.Fatalf("failed sends reached the simulator: %+v", st)
	}

	bare := newClient(t, s, nil)
	_, err = bare.Send(ctx, mediaMessage(sender1, message.TypeImage, `{"id":"med_roomkey0000000000000000000"}`))
	class("no media source", err, provider.ClassPermanent, 0)
}

func TestARefusedCachedIDIsUploadedAgain(t *testing.T) {
	s := startSim(t)
	src := newMemSource()
	src.add("med_roomkey0000000000000000000", "image/jpeg", "room.jpg", jpegData)
	sum := sha256.Sum256(jpegData)
	// An id Meta no longer has (deleted, or expired early).
	src.SetProviderMediaID(context.Background(), "meta/"+phone1, hex.EncodeToString(sum[:]), "1003383421387256")
	c := newClient(t, s, src)
	if _, err := c.Send(context.Background(), mediaMessage(sender1, message.TypeImage, `{"id":"med_roomkey0000000000000000000"}`)); err != nil {
		t.Fatal(err)
	}
	fresh := src.cached("meta/"+phone1, jpegData)
	if st := s.Stats(); st.MediaUploads != 1 || st.Accepted != 1 || fresh == "1003383421387256" || fresh == "" {
		t.Fatalf("stats %+v, cached %q", st, fresh)
	}
	if got := lastBody(t, s, phone1); got != `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"image","image":{"id":"`+fresh+`"}}` {
		t.Fatalf("body %s", got)
	}
}

func TestTemplateHeaderMediaIsUploadedOnce(t *testing.T) {
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0", RecordRequests: 100,
		Numbers: []sim.Number{{PhoneNumberID: phone1, DisplayPhoneNumber: "15550001000", WABAID: "200000000000001"}},
		Templates: map[string][]message.Template{"200000000000001": {{Name: "room_key", Language: "en", Category: "UTILITY",
			Components: []message.TemplateComponent{{Type: "HEADER", Format: "IMAGE"}, {Type: "BODY", Text: "Your digital room key is above."}}}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	src := newMemSource()
	src.add("med_roomkey0000000000000000000", "image/jpeg", "room_key_info.jpg", jpegData)
	c := newClient(t, s, src)
	content := func(id string) string {
		return `{"name":"room_key","language":{"code":"en"},"components":[{"type":"header","parameters":[{"type":"image","image":{"id":"` + id + `"}}]}]}`
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Send(context.Background(), mediaMessage(sender1, message.TypeTemplate, content("med_roomkey0000000000000000000"))); err != nil {
			t.Fatal(err)
		}
	}
	id := src.cached("meta/"+phone1, jpegData)
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"template","template":` + content(id) + `}`
	if id == "" || lastBody(t, s, phone1) != want {
		t.Fatalf("body %s, want %s", lastBody(t, s, phone1), want)
	}
	if n := s.Stats().MediaUploads; n != 1 {
		t.Fatalf("%d uploads for two sends, want 1", n)
	}
}
