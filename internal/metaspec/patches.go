package metaspec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Patch is one correction of Meta's spec, applied to the decoded document
// before it is compiled. Each one checks that the defect it corrects is
// there: a spec that no longer has it fails Spec.Validator, so that a patch never
// silently rewrites a spec Meta has fixed.
type Patch struct {
	// Name is the name of the function that applies it.
	Name string
	// Defect is what is wrong with the spec, as PROVIDERS.md or the
	// patch's comment states it.
	Defect string
	apply  func(doc map[string]any) error
}

// Patches returns every patch, in the order they are applied: first the
// five defects PROVIDERS.md lists, then the ones found while checking what
// wagate sends, each shown wrong by the spec's own text.
func Patches() []Patch {
	return []Patch{
		{"patchAllOfClosedMembers", "allOf with additionalProperties:false rejects valid messages", patchAllOfClosedMembers},
		{"patchLanguagePolicy", "LanguageObject wrongly requires policy", patchLanguagePolicy},
		{"patchButtonIndex", `the button index pattern rejects "0"`, patchButtonIndex},
		{"patchCTAURL", "cta_url is missing from the interactive type enum", patchCTAURL},
		{"patchInboundRefs", "inbound message schemas point at the outbound ones", patchInboundRefs},
		{"patchTextBody", "TextMessage leaves out the body's 4096-character limit and requirement that TextMessage_1 states", patchTextBody},
		{"patchLocationCoordinates", "LocationMessage types latitude and longitude as strings, against the spec's own examples", patchLocationCoordinates},
		{"patchPhoneTypes", "PhoneObject takes only HOME and WORK, though the spec's own contact phones are typed cell, main, iPhone…", patchPhoneTypes},
	}
}

// PatchesExcept returns Patches without the one named name, to show what
// that one patch changes.
func PatchesExcept(name string) []Patch {
	return slices.DeleteFunc(Patches(), func(p Patch) bool { return p.Name == name })
}

// patchAllOfClosedMembers corrects "`allOf` with `additionalProperties:false`
// rejects valid messages" (PROVIDERS.md). Every message schema but
// TemplateMessage is allOf[BaseMessageProperties, {additionalProperties:false, properties:
// {type, <type's object>}}]; additionalProperties sees only its own
// member's properties, so messaging_product, recipient_type and to, which
// BaseMessageProperties requires, are refused by the other member: no
// message passes. The closed member is given the other members' property
// names (as schemas that take anything: the other member checks them), so
// it still refuses every field neither member names.
//
// (unevaluatedProperties:false on the allOf would say the same, but when
// BaseMessageProperties fails, its properties count as unevaluated and
// every one of them would be reported as unknown besides the real fault.)
func patchAllOfClosedMembers(doc map[string]any) error {
	schemas, err := lookup(doc, "#/components/schemas")
	if err != nil {
		return err
	}
	n := 0
	var walk func(v any) error
	walk = func(v any) error {
		switch t := v.(type) {
		case map[string]any:
			if members, ok := t["allOf"].([]any); ok {
				if err := openAllOf(doc, members, &n); err != nil {
					return err
				}
			}
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range t {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(schemas); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("no allOf member with additionalProperties:false refuses its siblings' properties")
	}
	return nil
}

// openAllOf adds to each member of an allOf with additionalProperties:false
// the property names of the other members it lacks, counting the members
// changed in n.
func openAllOf(doc map[string]any, members []any, n *int) error {
	for i, m := range members {
		closed, ok := m.(map[string]any)
		if !ok || closed["additionalProperties"] != false {
			continue
		}
		props, ok := closed["properties"].(map[string]any)
		if !ok {
			return errors.New("an allOf member with additionalProperties:false has no properties")
		}
		added := false
		for j, other := range members {
			if j == i {
				continue
			}
			o, ok := other.(map[string]any)
			if !ok {
				continue
			}
			if ref, ok := o["$ref"].(string); ok {
				var err error
				if o, err = lookup(doc, ref); err != nil {
					return err
				}
			}
			op, _ := o["properties"].(map[string]any)
			for name := range op {
				if _, has := props[name]; !has {
					props[name] = true
					added = true
				}
			}
		}
		if added {
			*n++
		}
	}
	return nil
}

// patchLanguagePolicy corrects "`LanguageObject` wrongly requires `policy`"
// (PROVIDERS.md): all but one of the template request examples in the
// same spec send language {code} alone.
func patchLanguagePolicy(doc map[string]any) error {
	lang, err := lookup(doc, "#/components/schemas/LanguageObject")
	if err != nil {
		return err
	}
	req, _ := lang["required"].([]any)
	i := slices.Index(req, any("policy"))
	if i < 0 {
		return errors.New("LanguageObject does not require policy")
	}
	lang["required"] = slices.Delete(slices.Clone(req), i, i+1)
	return nil
}

// defectiveIndexPattern is the button index pattern as Meta published it:
// a character class of '2' to '6', ',', ' ', '1' and '1' to '4'.
const defectiveIndexPattern = "^[2-6, 11-14]$"

// patchButtonIndex corrects "the button `index` pattern rejects "0""
// (PROVIDERS.md): the property's description says "Position index of the
// button (0-9)" and its example is '0', but the pattern takes one
// character of "2-6, 1-4".
func patchButtonIndex(doc map[string]any) error {
	idx, err := lookup(doc, "#/components/schemas/TemplateComponent/properties/index")
	if err != nil {
		return err
	}
	if idx["pattern"] != defectiveIndexPattern {
		return fmt.Errorf("TemplateComponent index pattern is %v, not %s", idx["pattern"], defectiveIndexPattern)
	}
	idx["pattern"] = "^[0-9]$"
	return nil
}

// patchCTAURL corrects "`cta_url` is missing from the interactive type
// enum" (PROVIDERS.md). Adding it to the enum is not enough: no branch of
// ActionObject's oneOf takes a cta_url action either, so the patch adds
// one in the shape PROVIDERS.md gives: action{name:"cta_url",
// parameters{display_text≤20, url}}.
func patchCTAURL(doc map[string]any) error {
	typ, err := lookup(doc, "#/components/schemas/InteractiveObject/properties/type")
	if err != nil {
		return err
	}
	enum, _ := typ["enum"].([]any)
	if slices.Contains(enum, any("cta_url")) {
		return errors.New("InteractiveObject's type already takes cta_url")
	}
	typ["enum"] = append(slices.Clone(enum), "cta_url")
	action, err := lookup(doc, "#/components/schemas/ActionObject")
	if err != nil {
		return err
	}
	branches, ok := action["oneOf"].([]any)
	if !ok {
		return errors.New("ActionObject has no oneOf")
	}
	action["oneOf"] = append(slices.Clone(branches), map[string]any{
		"required": []any{"name", "parameters"},
		"properties": map[string]any{
			"name": map[string]any{"type": "string", "enum": []any{"cta_url"}},
			"parameters": map[string]any{
				"type":     "object",
				"required": []any{"display_text", "url"},
				"properties": map[string]any{
					"display_text": map[string]any{"type": "string", "maxLength": 20},
					"url":          map[string]any{"type": "string"},
				},
			},
		},
	})
	return nil
}

// patchInboundRefs corrects "inbound message schemas point at the
// outbound ones" (PROVIDERS.md): IncomingMessage, a webhook's message,
// maps text to TextMessage, the send body, which requires to and
// recipient_type and has no from or timestamp; and the inbound schemas
// build on the outbound BaseMessageProperties, ContactObject and
// ErrorObject. The references are pointed at the inbound schemas
// (inboundSchemas), in IncomingMessage and in every schema it reaches.
func patchInboundRefs(doc map[string]any) error {
	inboundOf := inboundSchemas()
	schemas, err := lookup(doc, "#/components/schemas")
	if err != nil {
		return err
	}
	for _, to := range inboundOf {
		if _, ok := schemas[to].(map[string]any); !ok {
			return fmt.Errorf("the spec has no schema %s", to)
		}
	}
	const prefix = "#/components/schemas/"
	n := 0
	rewrite := func(ref string) string {
		if name, ok := strings.CutPrefix(ref, prefix); ok {
			if to, ok := inboundOf[name]; ok {
				n++
				return prefix + to
			}
		}
		return ref
	}
	seen := map[string]bool{}
	var walk func(v any)
	visit := func(ref string) {
		name, ok := strings.CutPrefix(ref, prefix)
		if !ok || seen[name] {
			return
		}
		seen[name] = true
		if s, ok := schemas[name]; ok {
			walk(s)
		}
	}
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok {
				ref = rewrite(ref)
				t["$ref"] = ref
				visit(ref)
			}
			if d, ok := t["discriminator"].(map[string]any); ok {
				if m, ok := d["mapping"].(map[string]any); ok {
					for k, r := range m {
						if rs, ok := r.(string); ok {
							m[k] = rewrite(rs)
						}
					}
				}
			}
			for k, e := range t {
				if k != "discriminator" && k != "$ref" {
					walk(e)
				}
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		}
	}
	visit(inboundSchema)
	if n == 0 {
		return errors.New("IncomingMessage reaches no outbound schema")
	}
	return nil
}

// inboundSchemas maps each outbound schema an inbound one points at to the
// inbound schema meant: the spec was merged from files that each had a
// TextMessage, a BaseMessageProperties…; the merge renamed the later ones
// (TextMessage_2, BaseMessageProperties_1) but left the references to
// the old names.
func inboundSchemas() map[string]string {
	return map[string]string{
		"TextMessage":           "TextMessage_2",
		"ReactionMessage":       "ReactionMessage_1",
		"AudioMessage":          "AudioMessage_1",
		"DocumentMessage":       "DocumentMessage_1",
		"ImageMessage":          "ImageMessage_1",
		"StickerMessage":        "StickerMessage_1",
		"VideoMessage":          "VideoMessage_1",
		"LocationMessage":       "LocationMessage_1",
		"BaseMessageProperties": "BaseMessageProperties_1", // {from, id, timestamp}
		"ContactObject":         "ContactObject_1",         // phones of any type ("MOBILE")
		"ErrorObject":           "ErrorObject_2",           // {code, title, message, error_data}
	}
}

// patchTextBody gives TextMessage's body what the spec's other text
// object, TextMessage_1 ("Text content of the message"), states: body is
// required and has maxLength 4096. TextMessage has neither, so a text
// message with no body, or one over WhatsApp's 4096 characters, passes.
// (Not in PROVIDERS.md: a missing limit rejects nothing valid, it lets
// wrong bodies through.)
func patchTextBody(doc map[string]any) error {
	other, err := lookup(doc, "#/components/schemas/TextMessage_1/properties/body")
	if err != nil {
		return err
	}
	limit, ok := other["maxLength"]
	if !ok {
		return errors.New("TextMessage_1's body states no maxLength")
	}
	text, err := lookup(doc, "#/components/schemas/TextMessage/allOf/1/properties/text")
	if err != nil {
		return err
	}
	body, ok := text["properties"].(map[string]any)["body"].(map[string]any)
	if !ok {
		return errors.New("TextMessage's text has no body")
	}
	if _, has := body["maxLength"]; has {
		return errors.New("TextMessage's body already has a maxLength")
	}
	body["maxLength"] = limit
	text["required"] = []any{"body"}
	return nil
}

// patchLocationCoordinates types LocationMessage's latitude and longitude
// as numbers. The spec types them as strings, yet the properties' own
// examples are numbers ("example: 37.4847", "example: -122.1486"), as are
// those of its "Send Location Message" request example ("latitude:
// 37.758056") and of the inbound LocationMessage_1 ("type: number,
// format: float", "Location latitude."). Not in PROVIDERS.md: found
// because wagate sends numbers, as those examples do.
func patchLocationCoordinates(doc map[string]any) error {
	props, err := lookup(doc, "#/components/schemas/LocationMessage/allOf/1/properties/location/properties")
	if err != nil {
		return err
	}
	for _, k := range []string{"latitude", "longitude"} {
		p, ok := props[k].(map[string]any)
		if !ok || p["type"] != "string" {
			return fmt.Errorf("LocationMessage's %s is not typed string", k)
		}
		p["type"] = "number"
	}
	return nil
}

// patchPhoneTypes lets a contact's phone be CELL, MAIN or IPHONE as well
// as HOME and WORK. The spec's outbound PhoneObject takes only HOME and
// WORK, while its inbound contact phones (ContactObject_1) say "Type of
// phone number. For example, cell, mobile, main, iPhone, home, work,
// etc." with "example: CELL". The enum becomes the values Meta's contacts
// documentation lists (CELL, MAIN, IPHONE, HOME, WORK), which are the ones
// ingest's contacts builder takes. Not in PROVIDERS.md: found because a
// CELL phone was refused.
func patchPhoneTypes(doc map[string]any) error {
	typ, err := lookup(doc, "#/components/schemas/PhoneObject/properties/type")
	if err != nil {
		return err
	}
	enum, _ := typ["enum"].([]any)
	if slices.Contains(enum, any("CELL")) {
		return errors.New("PhoneObject's type already takes CELL")
	}
	typ["enum"] = []any{"CELL", "MAIN", "IPHONE", "HOME", "WORK"}
	return nil
}
