package main

import (
	"fmt"
	"os"

	"github.com/reconmon/recon/diag"
	"github.com/reconmon/recon/dsl"
)

func main() {
	src, _ := os.ReadFile(os.Args[1])
	f, ds := dsl.Parse(os.Args[1], src)
	diag.Text(os.Stdout, ds, map[string][]byte{os.Args[1]: src})
	if f != nil {
		fmt.Print(string(dsl.Format(f)))
	}
}
