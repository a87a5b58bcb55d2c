// Package dsl is the syntax of the .recon language: the lexer, the
// participle grammar, the syntax tree (every node with its source range) and
// the printer behind `reconc fmt`.
//
// It knows nothing of meaning: names are not resolved and module attributes
// are not checked here (that is the compiler's job). Parse turns source into
// a *File or into diagnostics; Format prints a *File in canonical layout,
// keeping every comment.
package dsl
