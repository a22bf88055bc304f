package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/message"
)

func storedTemplate(name, lang string, cat message.TemplateCategory, group string, st message.TemplateStatus) message.Template {
	return message.Template{Name: name, Language: lang, Category: cat, Group: group, Status: st,
		Components: []message.TemplateComponent{{Type: "BODY", Text: "Hi {{1}}, your room is ready for you now."}}}
}

func names(ts []message.Template) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name+"/"+t.Language+"/"+string(t.Status))
	}
	return out
}

func TestTemplatesAreKeptPerTenant(t *testing.T) {
	s, rdb := newTestStore(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutTemplates(ctx, "grand-plaza", []message.Template{
		storedTemplate("welcome_checkin", "en", message.CategoryUtility, "guest_journey", message.TemplateApproved),
		storedTemplate("welcome_checkin", "es", message.CategoryUtility, "guest_journey", message.TemplateApproved),
		storedTemplate("service_confirmation", "en", message.CategoryUtility, "guest_services", message.TemplateApproved),
		storedTemplate("promotional_offer", "en", message.CategoryMarketing, "marketing", message.TemplatePaused),
	}))
	must(s.PutTemplates(ctx, "seaside", []message.Template{storedTemplate("welcome_checkin", "en", message.CategoryMarketing, "", message.TemplateRejected)}))

	f := func(name string, fl TemplateFilter, want ...string) {
		t.Helper()
		got, err := s.Templates(ctx, "grand-plaza", fl)
		must(err)
		if fmt.Sprint(names(got)) != fmt.Sprint(want) {
			t.Fatalf("%s: got %v want %v", name, names(got), want)
		}
	}
	f("all", TemplateFilter{}, "promotional_offer/en/PAUSED", "service_confirmation/en/APPROVED", "welcome_checkin/en/APPROVED", "welcome_checkin/es/APPROVED")
	f("language", TemplateFilter{Language: "es"}, "welcome_checkin/es/APPROVED")
	f("group as category", TemplateFilter{Language: "en", Category: "guest_services"}, "service_confirmation/en/APPROVED")
	f("meta category any case", TemplateFilter{Category: "marketing"}, "promotional_offer/en/PAUSED")
	f("status", TemplateFilter{Status: message.TemplateApproved, Name: "welcome_checkin"}, "welcome_checkin/en/APPROVED", "welcome_checkin/es/APPROVED")
	f("nothing", TemplateFilter{Category: "spa"})

	got, err := s.Template(ctx, "seaside", "welcome_checkin", "en")
	must(err)
	if got.Status != message.TemplateRejected || got.Category != message.CategoryMarketing {
		t.Fatalf("seaside sees %+v", got)
	}
	if _, err := s.Template(ctx, "seaside", "service_confirmation", "en"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("seaside sees grand-plaza's template: %v", err)
	}
	if _, err := s.Template(ctx, "grand-plaza", "welcome_checkin", "de"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing language: %v", err)
	}
	if err := s.PutTemplates(ctx, "evil}{x", nil); err == nil {
		t.Fatal("a tenant id with braces would break the hash tag")
	}
	// The keys are the tenant's own.
	if n := rdb.HLen(ctx, s.Keys().TemplateKey("grand-plaza")).Val(); n != 4 {
		t.Fatalf("%d templates under %s", n, s.Keys().TemplateKey("grand-plaza"))
	}
}

func TestCreateTemplateQueuesItOnce(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_800_000_000_000)
	s.now = func() time.Time { return now }
	tp := storedTemplate("late_checkout_confirmation", "en", message.CategoryUtility, "", "")
	tp.Status, tp.ProviderID = message.TemplateApproved, "stale"
	if err := s.CreateTemplate(ctx, "grand-plaza", &tp); err != nil {
		t.Fatal(err)
	}
	got, err := s.Template(ctx, "grand-plaza", tp.Name, "en")
	if err != nil || got.Status != message.TemplatePending || got.ProviderID != "" || got.CreatedMS != now.UnixMilli() {
		t.Fatalf("%+v %v", got, err)
	}
	again := storedTemplate("late_checkout_confirmation", "en", message.CategoryMarketing, "", "")
	if err := s.CreateTemplate(ctx, "grand-plaza", &again); !errors.Is(err, ErrTemplateExists) {
		t.Fatalf("second create: %v", err)
	}
	if err := s.CreateTemplate(ctx, "seaside", &again); err != nil {
		t.Fatalf("another tenant may use the name: %v", err)
	}
	due, err := s.DueTemplateSubmissions(ctx, "grand-plaza", now, 10)
	if err != nil || len(due) != 1 || due[0] != (TemplateRef{"late_checkout_confirmation", "en"}) {
		t.Fatalf("due %v %v", due, err)
	}
	if err := s.RetryTemplateSubmission(ctx, "grand-plaza", due[0], now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueTemplateSubmissions(ctx, "grand-plaza", now.Add(59*time.Second), 10); len(due) != 0 {
		t.Fatalf("put off, yet due: %v", due)
	}
	if due, _ := s.DueTemplateSubmissions(ctx, "grand-plaza", now.Add(time.Minute), 10); len(due) != 1 {
		t.Fatalf("not due after the wait: %v", due)
	}
	if err := s.FinishTemplateSubmission(ctx, "grand-plaza", due[0], Submission{ProviderID: "1689556908129832", Status: message.TemplatePending, Category: message.CategoryUtility}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueTemplateSubmissions(ctx, "grand-plaza", now.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("still queued after submission: %v", due)
	}
	// A retry after the submission finished does not queue it again.
	if err := s.RetryTemplateSubmission(ctx, "grand-plaza", TemplateRef{"late_checkout_confirmation", "en"}, now); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueTemplateSubmissions(ctx, "grand-plaza", now.Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("queued again: %v", due)
	}
	got, _ = s.Template(ctx, "grand-plaza", tp.Name, "en")
	if got.ProviderID != "1689556908129832" || got.Status != message.TemplatePending {
		t.Fatalf("after submission %+v", got)
	}
}

func TestTemplateStatusByNameOrProviderID(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	tp := storedTemplate("room_ready", "en", message.CategoryUtility, "", "")
	if err := s.CreateTemplate(ctx, "grand-plaza", &tp); err != nil {
		t.Fatal(err)
	}
	// The review's webhook beats the submission's answer.
	ok, err := s.SetTemplateStatus(ctx, "grand-plaza", TemplateUpdate{Name: "room_ready", Language: "en", ProviderID: "42", Status: message.TemplateApproved, AtMS: 2000})
	if err != nil || !ok {
		t.Fatalf("%v %v", ok, err)
	}
	if err := s.FinishTemplateSubmission(ctx, "grand-plaza", TemplateRef{"room_ready", "en"}, Submission{ProviderID: "42", Status: message.TemplatePending}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Template(ctx, "grand-plaza", "room_ready", "en")
	if got.Status != message.TemplateApproved {
		t.Fatalf("the submission's PENDING undid the webhook's APPROVED: %+v", got)
	}
	f := func(name string, u TemplateUpdate, wantApplied bool, want message.TemplateStatus, wantReason string) {
		t.Helper()
		ok, err := s.SetTemplateStatus(ctx, "grand-plaza", u)
		if err != nil || ok != wantApplied {
			t.Fatalf("%s: applied %v %v", name, ok, err)
		}
		got, _ := s.Template(ctx, "grand-plaza", "room_ready", "en")
		if got.Status != want || got.RejectedReason != wantReason {
			t.Fatalf("%s: %s %q", name, got.Status, got.RejectedReason)
		}
	}
	f("by provider id", TemplateUpdate{ProviderID: "42", Status: message.TemplatePaused, Reason: "low quality", AtMS: 3000}, true, message.TemplatePaused, "low quality")
	f("an older repeat", TemplateUpdate{ProviderID: "42", Status: message.TemplateApproved, AtMS: 2500}, false, message.TemplatePaused, "low quality")
	f("unknown id", TemplateUpdate{ProviderID: "43", Status: message.TemplateDisabled, AtMS: 9000}, false, message.TemplatePaused, "low quality")
	f("unknown name", TemplateUpdate{Name: "nope", Language: "en", Status: message.TemplateDisabled}, false, message.TemplatePaused, "low quality")
	f("reinstated", TemplateUpdate{Name: "room_ready", Language: "en", Status: message.TemplateApproved, AtMS: 4000}, true, message.TemplateApproved, "")
	if ok, _ := s.SetTemplateStatus(ctx, "seaside", TemplateUpdate{ProviderID: "42", Status: message.TemplateDisabled}); ok {
		t.Fatal("another tenant's update found grand-plaza's template")
	}
}

func TestSyncProviderTemplates(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	pending := storedTemplate("late_checkout_confirmation", "en", message.CategoryUtility, "guest_services", "")
	if err := s.CreateTemplate(ctx, "grand-plaza", &pending); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutTemplates(ctx, "grand-plaza", []message.Template{storedTemplate("welcome_checkin", "en", message.CategoryUtility, "guest_journey", message.TemplateApproved)}))
	listing := []message.Template{
		{Name: "late_checkout_confirmation", Language: "en", Category: message.CategoryMarketing, Status: message.TemplateRejected, RejectedReason: "INCORRECT_CATEGORY", ProviderID: "7"},
		{Name: "welcome_checkin", Language: "en", Category: message.CategoryUtility, Status: message.TemplateApproved, ProviderID: "8"},
		{Name: "made_in_manager", Language: "de", Category: message.CategoryUtility, Status: message.TemplateApproved, ProviderID: "9",
			Components: []message.TemplateComponent{{Type: "BODY", Text: "Hallo!"}}},
	}
	res, err := s.SyncProviderTemplates(ctx, "grand-plaza", listing, true)
	must(err)
	if res != (SyncResult{Updated: 2, Imported: 1}) {
		t.Fatalf("result %+v", res)
	}
	got, _ := s.Template(ctx, "grand-plaza", "late_checkout_confirmation", "en")
	if got.Status != message.TemplateRejected || got.RejectedReason != "INCORRECT_CATEGORY" || got.ProviderID != "7" || got.Group != "guest_services" ||
		got.Category != message.CategoryMarketing || got.Components[0].Text == "" {
		t.Fatalf("synced %+v", got)
	}
	if due, _ := s.DueTemplateSubmissions(ctx, "grand-plaza", time.Now().Add(time.Hour), 10); len(due) != 0 {
		t.Fatalf("a template the provider holds is still queued: %v", due)
	}
	imp, err := s.Template(ctx, "grand-plaza", "made_in_manager", "de")
	if err != nil || imp.Status != message.TemplateApproved || imp.Components[0].Text != "Hallo!" {
		t.Fatalf("imported %+v %v", imp, err)
	}
	// A second identical listing changes nothing.
	if res, err := s.SyncProviderTemplates(ctx, "grand-plaza", listing, true); err != nil || res != (SyncResult{}) {
		t.Fatalf("again: %+v %v", res, err)
	}
	if ok, _ := s.SetTemplateStatus(ctx, "grand-plaza", TemplateUpdate{ProviderID: "9", Status: message.TemplatePaused}); !ok {
		t.Fatal("the id index of an imported template is missing")
	}
}

func TestTemplateStatusUpdatesDoNotLoseEachOther(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	var ts []message.Template
	for i := range 8 {
		ts = append(ts, storedTemplate(fmt.Sprintf("t%d", i), "en", message.CategoryUtility, "", message.TemplatePending))
	}
	if err := s.PutTemplates(ctx, "grand-plaza", ts); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.SetTemplateStatus(ctx, "grand-plaza", TemplateUpdate{Name: fmt.Sprintf("t%d", i), Language: "en",
				ProviderID: fmt.Sprint(100 + i), Status: message.TemplateApproved}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	all, _ := s.Templates(ctx, "grand-plaza", TemplateFilter{Status: message.TemplateApproved})
	if len(all) != 8 {
		t.Fatalf("%d of 8 concurrent updates kept", len(all))
	}
	for i := range 8 {
		if ok, _ := s.SetTemplateStatus(ctx, "grand-plaza", TemplateUpdate{ProviderID: fmt.Sprint(100 + i), Status: message.TemplatePaused}); !ok {
			t.Fatalf("id %d lost from the index", 100+i)
		}
	}
}
