// Package archivetest holds the interoperability tests of the rule engine's
// backtest with the Parquet archiver (kept apart from package rules so the
// engine's own tests do not build the archiver).
package archivetest
