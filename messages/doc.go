// Package messages holds the contracts that cross the wire between windrow's
// services: the versioned message types, the subjects they travel on, the
// headers they carry, and their encoding.
//
// Every message is JSON with its versioned type name in the Windrow-Type
// header (for example "windrow.LoadCommand.v1"). A new field may be added to a
// version; removing or changing the meaning of one makes a new version, and
// readers reject versions they do not know. Each type has a Validate method
// that publishers call before sending and consumers call after decoding; golden
// encodings live in testdata/ and are checked by the tests, so an accidental
// change of the wire format fails the build.
//
// Idempotency: every publish sets Nats-Msg-Id (see MsgID methods), so a retried
// publish inside the stream's duplicate window is stored once.
//
// This package is a leaf: it imports no NATS client, no service and no I/O.
package messages
