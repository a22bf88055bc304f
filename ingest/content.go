package ingest

import (
	"encoding/json"

	"github.com/wagate/wagate/message"
)

// buildLocation appends Meta's location object for a messages/send content.
func (s *Server) buildLocation(p Principal, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	return dst, "", &apiError{Code: message.CodeInternal, Message: "not built yet"}
}

// buildContacts appends Meta's contacts array for a messages/send content.
func (s *Server) buildContacts(p Principal, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	return dst, "", &apiError{Code: message.CodeInternal, Message: "not built yet"}
}

// buildReaction appends Meta's reaction object for a messages/send content.
func (s *Server) buildReaction(p Principal, guest string, raw json.RawMessage, dst []byte) ([]byte, string, *apiError) {
	return dst, "", &apiError{Code: message.CodeInternal, Message: "not built yet"}
}
