package compiler

import "os"

// Sources records the files a compilation reads, keyed by the file names
// its diagnostics carry, so that diag.Text can show their source lines:
//
//	srcs := compiler.Sources{}
//	p, ds := compiler.Compile(path, compiler.Options{ReadFile: srcs.Reader(nil)})
//	diag.Text(os.Stderr, ds, srcs)
type Sources map[string][]byte

// Reader returns a ReadFile function for Options that reads with read
// (os.ReadFile when nil) and records every file it returns in s.
func (s Sources) Reader(read func(string) ([]byte, error)) func(string) ([]byte, error) {
	if read == nil {
		read = os.ReadFile
	}
	return func(name string) ([]byte, error) {
		data, err := read(name)
		if err == nil {
			s[name] = data
		}
		return data, err
	}
}
