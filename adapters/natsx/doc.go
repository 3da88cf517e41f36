// Package natsx connects windrow to NATS: an embedded JetStream server for
// single-process runs (which takes only clients holding its NKey seed
// file), client connections with credentials, and idempotent
// provisioning of the streams and KV buckets every service relies on.
//
// Provisioning is create-or-update and safe to run from every service at
// start: whichever instance comes first creates a stream, the others find it.
package natsx
