package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wagate/wagate/message"
)

// catalogueFiles are the demo hotel's templates, one file per group.
//
//go:embed catalogue/*.json
var catalogueFiles embed.FS

// demoCatalogue returns the templates `wagate dev` gives the demo tenant
// and its simulated WhatsApp Business Account, all APPROVED: seed 000's
// guest journey, service and marketing templates, the window-expiry
// suggestions service_followup and general_inquiry, and seed 002's Spanish
// service-request templates. Each one passes Meta's rules (Validate); a
// file that does not decode, or a template that breaks a rule or comes
// twice, is an error.
func demoCatalogue() ([]message.Template, error) {
	names, err := fs.Glob(catalogueFiles, "catalogue/*.json")
	if err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	var out []message.Template
	seen := map[string]string{}
	for _, name := range names { // fs.Glob sorts them
		raw, err := catalogueFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", name, err)
		}
		var ts []message.Template
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&ts); err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", name, err)
		}
		for i := range ts {
			t := &ts[i]
			t.Normalize()
			if rs := t.Validate(); len(rs) > 0 {
				msgs := make([]string, len(rs))
				for j, r := range rs {
					msgs[j] = r.Component + " " + r.Field + ": " + r.Message
				}
				return nil, fmt.Errorf("catalogue %s: template %s (%s): %s", name, t.Name, t.Language, strings.Join(msgs, "; "))
			}
			key := t.Name + ":" + t.Language
			if prev, ok := seen[key]; ok {
				return nil, fmt.Errorf("catalogue %s: template %s (%s) is in %s too", name, t.Name, t.Language, prev)
			}
			seen[key] = name
			t.Status = message.TemplateApproved
			out = append(out, *t)
		}
	}
	return out, nil
}
