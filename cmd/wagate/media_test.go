package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/internal/dispatchtest"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

// mediaAPICall posts body to the API and decodes the answer.
func mediaAPICall(t *testing.T, url, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+devStaffToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

// TestUploadedMediaReachesMetaOnce wires what gateway.go wires: the API
// stores an upload, send-media queues it under wagate's id, and the Meta
// client (against the simulator) uploads the bytes on first use and
// reuses Meta's id for a second upload of the same bytes.
func TestUploadedMediaReachesMetaOnce(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	store, err := redis.New(ctx, rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 4, InboundParts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	log := slog.New(slog.DiscardHandler)
	mf := mediaFlags{dir: t.TempDir(), signingKey: devMediaSigningKey, publicURL: "https://wa.grandplaza.example", urlTTL: time.Hour}
	mcfg, src, err := mf.setup("127.0.0.1:0", store, log)
	if err != nil {
		t.Fatal(err)
	}
	tokens := ingest.NewTokens()
	if err := tokens.Add(devStaffToken, ingest.Principal{Tenant: &ingest.Tenant{ID: devTenant, Senders: []string{devSender}}, Role: ingest.RoleStaff}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	api, err := ingest.NewServer(ingest.Config{Addr: "127.0.0.1:0", Media: mcfg}, store, tokens, reg, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0", AccessToken: devSimToken,
		Numbers: []sim.Number{{PhoneNumberID: devPhoneID, DisplayPhoneNumber: devSender[1:], WABAID: devWABA}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	client, err := meta.New(meta.Config{BaseURL: s.URL(), AccessToken: devSimToken, PhoneNumberIDs: map[string]string{devSender: devPhoneID}, Media: src})
	if err != nil {
		t.Fatal(err)
	}

	const guest = "+1234567890"
	now := time.Now().UnixMilli()
	if _, err := store.RecordInbound(ctx, &redis.InboundArgs{TenantID: devTenant, Sender: devSender, Guest: guest, ProviderMessageID: "wamid.hello",
		AtMS: now, Entry: redis.HistoryEntry{ID: "wamid.hello", AtMS: now, Type: "text", Preview: "Hello"}, NotifyKind: "inbound_message"}); err != nil {
		t.Fatal(err)
	}
	var pic bytes.Buffer
	if err := png.Encode(&pic, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	base := "http://" + api.Addr() + "/api/v1/whatsapp/"
	upload := func() string {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		fw, _ := w.CreateFormFile("media", "room_key_info.png")
		fw.Write(pic.Bytes())
		w.WriteField("media_type", "image")
		w.Close()
		code, v := mediaAPICall(t, base+"media/upload", w.FormDataContentType(), body.Bytes())
		if code != 201 {
			t.Fatalf("upload: %d %v", code, v)
		}
		return v["media_id"].(string)
	}
	sendVia := func(mediaID string) string {
		code, v := mediaAPICall(t, base+"messages/send-media", "application/json",
			[]byte(`{"guest_phone":"`+guest+`","media_id":"`+mediaID+`","media_type":"image","caption":"Your room key"}`))
		if code != 202 {
			t.Fatalf("send-media: %d %v", code, v)
		}
		j := dispatchtest.Begin(t, store, v["message_id"].(string))
		if _, err := client.Send(ctx, &j.Msg); err != nil {
			t.Fatalf("meta send: %v", err)
		}
		reqs := s.Requests(devPhoneID)
		return string(reqs[len(reqs)-1].Body)
	}
	first := sendVia(upload())
	m := regexp.MustCompile(`^\{"messaging_product":"whatsapp","recipient_type":"individual","to":"1234567890","type":"image","image":\{"id":"([0-9]{16})","caption":"Your room key"\}\}$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first body %s", first)
	}
	if n := s.Stats().MediaUploads; n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
	if second := sendVia(upload()); second != first {
		t.Fatalf("the same bytes uploaded again went out as %s, want %s", second, first)
	}
	if n := s.Stats().MediaUploads; n != 1 {
		t.Fatalf("%d uploads after a second send, want 1", n)
	}
	if _, err := src.Media(ctx, "med_"+strings.Repeat("0", 26)); !errors.Is(err, meta.ErrMediaNotFound) {
		t.Fatalf("unknown media: %v", err)
	}
}

func TestMediaFlags(t *testing.T) {
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 1, InboundParts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	log := slog.New(slog.DiscardHandler)
	cfg, src, err := (&mediaFlags{}).setup("127.0.0.1:8080", store, log)
	if err != nil || cfg.Files != nil || src != nil {
		t.Fatalf("no folder: %+v %v %v, want media off", cfg, src, err)
	}
	if _, _, err := (&mediaFlags{dir: t.TempDir(), signingKey: "short"}).setup("127.0.0.1:8080", store, log); err == nil {
		t.Fatal("a short signing key was taken")
	}
	cfg, src, err = (&mediaFlags{dir: t.TempDir()}).setup("0.0.0.0:8080", store, log)
	if err != nil || src == nil || len(cfg.SigningKey) != 32 || cfg.PublicBaseURL != "http://127.0.0.1:8080" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
}
