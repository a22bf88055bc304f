package message

// Code is an error code of wagate's API, in the hotel seed's vocabulary.
type Code string

// The API's error codes. The first seven are the seed's own.
const (
	CodeInvalidPhoneNumber    Code = "INVALID_PHONE_NUMBER"
	CodeTemplateNotFound      Code = "TEMPLATE_NOT_FOUND"
	CodeMessageWindowExpired  Code = "MESSAGE_WINDOW_EXPIRED"
	CodeRateLimitExceeded     Code = "RATE_LIMIT_EXCEEDED"
	CodeMediaUploadFailed     Code = "MEDIA_UPLOAD_FAILED"
	CodeWebhookDeliveryFailed Code = "WEBHOOK_DELIVERY_FAILED"
	CodeGuestOptedOut         Code = "GUEST_OPTED_OUT"

	CodeInvalidRequest       Code = "INVALID_REQUEST"
	CodeUnauthorized         Code = "UNAUTHORIZED"
	CodeForbidden            Code = "FORBIDDEN"
	CodeNotFound             Code = "NOT_FOUND"
	CodeMessageNotFound      Code = "MESSAGE_NOT_FOUND"
	CodeBatchNotFound        Code = "BATCH_NOT_FOUND"
	CodeMethodNotAllowed     Code = "METHOD_NOT_ALLOWED"
	CodePayloadTooLarge      Code = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMedia     Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeIdempotencyConflict  Code = "IDEMPOTENCY_KEY_REUSED"
	CodeNotDeadLettered      Code = "MESSAGE_NOT_DEAD_LETTERED"
	CodeTemplateRejected     Code = "TEMPLATE_REJECTED"
	CodeTemplateExists       Code = "TEMPLATE_EXISTS"
	CodeMediaNotFound        Code = "MEDIA_NOT_FOUND"
	CodeConversationNotFound Code = "CONVERSATION_NOT_FOUND"
	CodeConversationClosed   Code = "CONVERSATION_CLOSED"
	CodeMessageNotSent       Code = "MESSAGE_NOT_SENT"
	CodeStaffNotFound        Code = "STAFF_NOT_FOUND"
	CodeUsernameTaken        Code = "USERNAME_TAKEN"
	CodeServiceUnavailable   Code = "SERVICE_UNAVAILABLE"
	CodeProviderError        Code = "PROVIDER_ERROR"
	CodeInternal             Code = "INTERNAL_ERROR"
)

// HTTPStatus is the status code the API answers with for c.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeInvalidPhoneNumber, CodeInvalidRequest:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeMessageWindowExpired, CodeGuestOptedOut, CodeForbidden:
		return 403
	case CodeTemplateNotFound, CodeNotFound, CodeMessageNotFound, CodeBatchNotFound, CodeMediaNotFound, CodeConversationNotFound,
		CodeStaffNotFound:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeIdempotencyConflict, CodeNotDeadLettered, CodeTemplateExists, CodeConversationClosed, CodeMessageNotSent,
		CodeUsernameTaken:
		return 409
	case CodePayloadTooLarge:
		return 413
	case CodeUnsupportedMedia:
		return 415
	case CodeMediaUploadFailed, CodeTemplateRejected:
		return 422
	case CodeRateLimitExceeded:
		return 429
	case CodeServiceUnavailable:
		return 503
	case CodeProviderError:
		return 502
	}
	return 500
}
