package ingest

// openWindow opens the 24-hour window of guest with the tenant's numbers, as
// an inbound message from the guest would, so that free-form sends to the
// guest are accepted.
func (h *harness) openWindow(guest string) {
	h.t.Helper()
	// The window rule lands with conversations; until then every guest's
	// window counts as open.
}
