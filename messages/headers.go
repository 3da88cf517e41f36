package messages

// Header names windrow sets on the messages it publishes.
const (
	// HeaderType carries the versioned type name, e.g. "windrow.LoadCommand.v1".
	HeaderType = "Windrow-Type"
	// HeaderMsgID is JetStream's deduplication header.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderPolicy names the policy a message belongs to.
	HeaderPolicy = "Windrow-Policy"
	// HeaderWindow names the window id, where one is known.
	HeaderWindow = "Windrow-Window"
	// HeaderReason says why an event was dead-lettered (see Reason*).
	HeaderReason = "Windrow-Reason"
	// HeaderDetail is a human-readable explanation that goes with HeaderReason.
	HeaderDetail = "Windrow-Detail"
	// HeaderSourceStream, HeaderSourceSubject and HeaderSourceSeq locate the original event.
	HeaderSourceStream  = "Windrow-Source-Stream"
	HeaderSourceSubject = "Windrow-Source-Subject"
	HeaderSourceSeq     = "Windrow-Source-Seq"
	// HeaderEventTime is the event time (RFC 3339, UTC) of a late marker.
	HeaderEventTime = "Windrow-Event-Time"
	// HeaderTruncated is "true" on a dead letter whose payload was cut to fit
	// the server's maximum message size; HeaderOriginalSize gives the size of
	// the event as published (the source stream holds it whole).
	HeaderTruncated    = "Windrow-Truncated"
	HeaderOriginalSize = "Windrow-Original-Size"
)

// Reasons a record is dead-lettered. They are stable identifiers: dashboards
// and `windrow dlq` group by them.
const (
	ReasonMalformedJSON = "malformed_json" // not a JSON object
	ReasonMissingField  = "missing_field"  // a required field is absent or null
	ReasonWrongType     = "wrong_type"     // a value does not fit its declared type
	ReasonOutOfRange    = "out_of_range"   // a number or time out of range, NaN or Inf
	ReasonInvalidUTF8   = "invalid_utf8"   // a string is not valid UTF-8
	ReasonLate          = "late"           // the window was sealed (late: dlq)
	ReasonFuture        = "future"         // event time beyond the policy's future horizon
	ReasonKeyOverflow   = "key_overflow"   // its window already holds max_keys_per_window other keys (key_overflow: dlq)
)
