// Package deploy carries the example policies into the windrow binary, so
// that `windrow demo` works from a single file on a fresh machine.
package deploy

import _ "embed"

// DailyStoreSales is the example policy of `windrow demo`.
//
//go:embed policies/daily_store_sales.yaml
var DailyStoreSales []byte
