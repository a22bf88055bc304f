package dispatcher

import (
	"strings"
	"testing"

	"github.com/wagate/wagate/message"
	"github.com/wagate/wagate/provider/sim"
	"github.com/wagate/wagate/store/redis"
)

func TestTemplateSendsReachTheProvider(t *testing.T) {
	welcome := message.Template{Name: "welcome_checkin", Language: "en", Category: message.CategoryUtility, Status: message.TemplateApproved,
		Components: []message.TemplateComponent{{Type: "BODY", Text: "Hello {{guest_name}}, welcome to {{hotel_name}}! Your room {{room_number}} is ready for you today."}}}
	r := newRig(t, sim.Config{Templates: map[string][]message.Template{"1": {welcome}}}, Config{})
	obj, _, err := welcome.BuildSend(map[string]string{"guest_name": "John Smith", "hotel_name": "Grand Plaza Hotel", "room_number": "205"})
	if err != nil {
		t.Fatal(err)
	}
	bad, _, _ := welcome.BuildSend(map[string]string{"guest_name": "John Smith", "hotel_name": "Grand Plaza Hotel", "room_number": "205"})
	bad = []byte(strings.Replace(string(bad), `"code":"en"`, `"code":"de"`, 1))
	good := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Type, a.Content, a.Template = message.TypeTemplate, obj, welcome.Name })
	missing := r.enqueue(1, sender, func(a *redis.EnqueueArgs) { a.Type, a.Content, a.Template = message.TypeTemplate, bad, welcome.Name })
	r.start()
	r.wait(good, func(s message.Status) bool { return s != message.StatusQueued && s != message.StatusSending })
	st := r.wait(missing, is(message.StatusFailed))
	if st[missing[0]].ErrorCode != 132001 {
		t.Fatalf("a template missing in German failed with %d", st[missing[0]].ErrorCode)
	}
	reqs := r.sim.Requests(phoneID)
	if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), `"type":"template","template":`+string(obj)) {
		t.Fatalf("the provider got %d sends: %v", len(reqs), reqs)
	}
	if got := r.wait(good, func(s message.Status) bool {
		return s == message.StatusSent || s == message.StatusDelivered || s == message.StatusRead
	}); len(got) != 1 {
		t.Fatal("template send not sent")
	}
}
