// Package archtest holds the import rules of windrow's layout as a test
// (see docs/architecture.md, "Layout"). From the bottom up:
//
//	messages/, windows/, deploy/   leaves: import nothing of windrow's
//	adapters/…                      NATS, KV stores, object stores, warehouses, telemetry
//	pipeline/…                      records, staging, window-state transitions, load commands
//	services/… and ops/…            the three services; operator features (dlq, replay, inspect)
//	app/…                           composition: the stack, policy supervision, metrics
//	loadtest/, cmd/, tools/         the binary, load and fault tests, generators
//
// A package imports only packages of lower layers and of its own folder in
// its layer (adapters/natsx may import adapters/telemetry); a service never
// imports another service, and services and ops never import each other.
// internal/test* and the conformance suites beside the seams
// (adapters/objstore/objstoretest, adapters/warehouse/warehousetest, which
// may use pipeline/ to write their data) are test support: no non-test
// package outside them imports them. Only non-test imports are checked: a test may compose higher layers,
// as integration tests do.
package archtest
