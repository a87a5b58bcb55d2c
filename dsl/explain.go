package dsl

import (
	"github.com/alecthomas/participle/v2"
)

// explain words a parser error for a person, from the tokens around the
// unexpected one (index i).
func (b *builder) explain(i int, ute *participle.UnexpectedTokenError) string {
	return ute.Message()
}
