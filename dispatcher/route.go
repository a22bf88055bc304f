package dispatcher

import (
	"fmt"

	"github.com/wagate/wagate/provider"
)

// Step is one step of a fallback chain, tried in order while the primary
// provider's breaker is open.
type Step string

// Fallback steps.
const (
	// StepSecondary sends through the number's secondary WhatsApp provider.
	StepSecondary Step = "secondary"
	// StepSMS sends the message's fallback text by SMS.
	StepSMS Step = "sms"
	// StepHold keeps the message until the primary's breaker lets probes
	// through again.
	StepHold Step = "hold"
)

// ParseStep checks a step's name.
func ParseStep(s string) (Step, error) {
	switch st := Step(s); st {
	case StepSecondary, StepSMS, StepHold:
		return st, nil
	}
	return "", fmt.Errorf("dispatcher: unknown fallback step %q (secondary, sms or hold)", s)
}

// Route says how one sender number's messages go out.
type Route struct {
	// Primary sends the number's WhatsApp messages.
	Primary provider.Provider
	// Secondary is another WhatsApp provider for the same number
	// (Gallabox, Alibaba ChatApp), used while Primary's breaker is open.
	Secondary provider.Provider
	// SMS carries a message's fallback text: while Primary's breaker is
	// open, when WhatsApp fails, or when it is not delivered in time.
	SMS provider.Provider
	// Fallback is the chain tried while Primary's breaker is open; a
	// message that no step can carry is held (StepHold is implied last).
	Fallback []Step
}

// Router finds the route of a sender number.
type Router interface {
	Route(sender string) (*Route, bool)
}
