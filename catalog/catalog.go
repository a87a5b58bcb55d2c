// Package catalog registers every module in one place.
package catalog

import (
	"fmt"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sinks/alertmanager"
	"github.com/reconmon/recon/sinks/exec"
	"github.com/reconmon/recon/sinks/kafka"
	"github.com/reconmon/recon/sinks/parquet"
	"github.com/reconmon/recon/sinks/stdout"
	"github.com/reconmon/recon/sinks/webhook"
	"github.com/reconmon/recon/sources/dns"
	"github.com/reconmon/recon/sources/generator"
	httpsource "github.com/reconmon/recon/sources/http"
	"github.com/reconmon/recon/sources/nagios"
	"github.com/reconmon/recon/sources/ping"
	"github.com/reconmon/recon/sources/selfcheck"
	"github.com/reconmon/recon/sources/snmp"
	"github.com/reconmon/recon/sources/snmptrap"
	"github.com/reconmon/recon/sources/tcp"
)

var specs = []*module.Spec{
	httpsource.Spec, tcp.Spec, dns.Spec, ping.Spec, snmp.Spec, snmptrap.Spec,
	nagios.Spec, selfcheck.Spec, generator.Spec,
	parquet.Spec, kafka.Spec, webhook.Spec, stdout.Spec, exec.Spec, alertmanager.Spec,
}

// New returns a registry holding every module of this build.
func New() (*module.Registry, error) {
	r := module.NewRegistry()
	for _, s := range specs {
		if err := r.Register(s); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
	}
	return r, nil
}

// Default returns New's registry, panicking on a duplicate: the module set
// is fixed at build time, so a duplicate is a programming error caught by
// the tests.
func Default() *module.Registry {
	r, err := New()
	if err != nil {
		panic(err)
	}
	return r
}
