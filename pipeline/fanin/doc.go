// Package fanin merges more sorted Parquet inputs than may be open at once.
//
// Merge yields what records.Layout.MergeKnown would yield over all the
// inputs together — rows in Compare order, each source sequence once, the
// same counts — while holding at most Config.FanIn inputs open and their
// estimated read memory within Config.Memory bytes. When everything fits,
// that is one k-way merge, as before. When it does not, the inputs are
// merged in groups into intermediate runs (sorted, deduplicated Parquet
// files in a private temporary directory), pass after pass, until the runs
// fit; the last pass merges them with the files that must stay open.
//
// Exactness. A row dropped in an intermediate pass (its source sequence
// repeats within its group) is counted as a duplicate there; the final
// merge drops repeats across runs and against the known files. The sum is
// what a single merge counts: every input row is either yielded or counted
// once.
//
// Crash safety. Runs live in a directory created for one Merge (named
// DirPrefix…, under Config.Dir) and removed when it returns. A process killed
// meanwhile leaves the directory; nothing ever reads another merge's runs, so
// it cannot change any result, and RemoveStale deletes such directories once
// they have not been touched for a while (a live merge touches its directory
// as it goes).
package fanin
