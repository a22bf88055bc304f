package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wagate/wagate/ingest"
	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/meta"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
	"github.com/wagate/wagate/store/redis/redistest"
)

func catalogue(t *testing.T) []message.Template {
	t.Helper()
	ts, err := demoCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestDemoCatalogueFollowsMetasRules(t *testing.T) {
	ts := catalogue(t)
	params := map[string]string{}
	for i := range ts {
		tp := &ts[i]
		if rs := tp.Validate(); len(rs) != 0 {
			t.Fatalf("%s: %+v", tp.Name, rs)
		}
		if tp.Status != message.TemplateApproved || tp.Group == "" {
			t.Fatalf("%s: status %s group %q", tp.Name, tp.Status, tp.Group)
		}
		var keys []string
		for _, p := range tp.Parameters() {
			if p.Component == message.ComponentBody {
				keys = append(keys, p.Key)
			}
		}
		params[tp.Name+"/"+tp.Language+"/"+string(tp.Category)+"/"+tp.Group] = strings.Join(keys, ",")
	}
	want := map[string]string{
		"welcome_checkin/en/UTILITY/guest_journey":                   "guest_name,hotel_name,room_number,checkin_time,checkout_date",
		"room_ready/en/UTILITY/guest_journey":                        "guest_name,room_number",
		"checkout_reminder/en/UTILITY/guest_journey":                 "guest_name,room_number,checkout_time",
		"post_stay_feedback/en/UTILITY/guest_journey":                "guest_name,hotel_name",
		"service_confirmation/en/UTILITY/guest_services":             "service_type,appointment_time,location,estimated_duration",
		"request_acknowledgment/en/UTILITY/guest_services":           "guest_name,request_type,room_number,response_time",
		"delivery_notification/en/UTILITY/guest_services":            "guest_name,item,room_number,delivery_time",
		"emergency_alert/en/UTILITY/guest_services":                  "hotel_name,alert_details",
		"service_followup/en/UTILITY/guest_services":                 "guest_name,service_type",
		"general_inquiry/en/UTILITY/guest_services":                  "guest_name",
		"promotional_offer/en/MARKETING/marketing":                   "guest_name,discount,offer_name,expiry_date",
		"event_invitation/en/MARKETING/marketing":                    "guest_name,event_name,event_date,venue",
		"seasonal_greeting/en/MARKETING/marketing":                   "guest_name,hotel_name",
		"loyalty_update/en/MARKETING/marketing":                      "guest_name,points_balance,tier_name",
		"nueva_solicitud_de_servicio/es/UTILITY/service_requests":    "request_id,service_type,customer_name,contact_phone,address,requested_delivery_date",
		"solicitud_recibida_cliente/es/UTILITY/service_requests":     "customer_name,request_id,service_type,requested_date,contact_email",
		"ptar_formulario_enviado/es/UTILITY/service_requests":        "customer_name,form_url,vendor_name,vendor_phone",
		"solicitud_aprobada_operaciones/es/UTILITY/service_requests": "vendor_name,request_id,approved_delivery_date",
		"reasignacion_removida/es/UTILITY/service_requests":          "vendor_first_name,request_id,service_type",
	}
	if fmt.Sprint(params) != fmt.Sprint(want) {
		var got []string
		for k, v := range params {
			if want[k] != v {
				got = append(got, k+" = "+v)
			}
		}
		sort.Strings(got)
		t.Fatalf("catalogue differs from the seeds:\n%s\n(%d templates, want %d)", strings.Join(got, "\n"), len(params), len(want))
	}
}

// exampleValues are a template's sample values plus what its header needs.
func exampleValues(tp *message.Template) map[string]string {
	v := tp.ExampleValues()
	if h := tp.Component(message.ComponentHeader); h != nil && h.Format == message.HeaderImage {
		v[message.ParamHeaderMediaURL] = "https://grandplaza.example/offers/spring.jpg"
	}
	return v
}

func TestDemoCatalogueSendsThroughTheSimulator(t *testing.T) {
	ts := catalogue(t)
	numbers := devNumbers(1)
	s, err := sim.New(sim.Config{Addr: "127.0.0.1:0", Numbers: numbers, AccessToken: devSimToken,
		Templates: map[string][]message.Template{devWABA: ts}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	c, err := meta.New(meta.Config{BaseURL: s.URL(), AccessToken: devSimToken, PhoneNumberIDs: map[string]string{devSender: numbers[0].PhoneNumberID}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ts {
		tp := &ts[i]
		obj, preview, err := tp.BuildSend(exampleValues(tp))
		if err != nil {
			t.Fatalf("%s: %v", tp.Name, err)
		}
		if strings.Contains(preview, "{{") {
			t.Fatalf("%s: preview %q keeps a variable", tp.Name, preview)
		}
		m := &message.Message{Sender: devSender, Recipient: "+14155550123", Type: message.TypeTemplate, Content: obj}
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatalf("%s (%s): the simulator refused %s: %v", tp.Name, tp.Language, obj, err)
		}
	}
}

func TestSeedTemplateCallsWorkAgainstTheCatalogue(t *testing.T) {
	rdb := redistest.Client(t)
	store, err := redis.New(context.Background(), rdb, redis.Config{Prefix: redistest.Prefix(t, rdb), Shards: 2, InboundParts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.PutTemplates(context.Background(), devTenant, catalogue(t)); err != nil {
		t.Fatal(err)
	}
	fc := devConfig("http://127.0.0.1:1", devNumbers(1), 80)
	tokens, err := fc.tokens()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	api, err := ingest.NewServer(ingest.Config{Addr: "127.0.0.1:0", MetaAppSecret: devAppSecret, MetaVerifyToken: devVerifyToken},
		store, tokens, reg, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	call := func(token, method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+api.Addr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
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
	// Seed 001, as written.
	for _, body := range []string{
		`{"guest_phone":"+1234567890","template_name":"welcome_checkin","language":"en","parameters":{"guest_name":"John Smith","hotel_name":"Grand Plaza Hotel",` +
			`"room_number":"205","checkin_time":"3:00 PM","checkout_date":"January 18, 2024"},"conversation_metadata":{"booking_reference":"RB123456","guest_tier":"gold_member"}}`,
		`{"guest_phone":"+1234567890","template_name":"service_confirmation","language":"en","parameters":{"service_type":"Spa Massage",` +
			`"appointment_time":"Tomorrow at 2:00 PM","location":"Wellness Center - Room 3","estimated_duration":"90 minutes"}}`,
	} {
		code, v := call(devStaffToken, "POST", "/api/v1/whatsapp/templates/send", body)
		if code != 202 || v["status"] != "queued" || v["message_id"] == nil {
			t.Fatalf("%d %v", code, v)
		}
	}
	code, v := call(devStaffToken, "GET", "/api/v1/whatsapp/templates?language=en&category=guest_services", "")
	if code != 200 || v["total"] != float64(6) {
		t.Fatalf("guest services: %d %v", code, v)
	}
	code, v = call(devStaffToken, "GET", "/api/v1/whatsapp/templates/welcome_checkin", "")
	if code != 200 || v["status"] != "APPROVED" || v["example"].(map[string]any)["text"] == "" {
		t.Fatalf("details: %d %v", code, v)
	}
	code, v = call(devAdminToken, "POST", "/api/v1/whatsapp/templates", `{"name":"late_checkout_confirmation","category":"UTILITY","language":"en","components":[`+
		`{"type":"HEADER","format":"TEXT","text":"Late Checkout Confirmed"},`+
		`{"type":"BODY","text":"Hi {{1}}, your late checkout until {{2}} has been confirmed for room {{3}}. Additional charges: {{4}}."},`+
		`{"type":"FOOTER","text":"Thank you for staying with us!"}]}`)
	if code != 201 || v["status"] != "PENDING" {
		t.Fatalf("seed 001's submission: %d %v", code, v)
	}
}
