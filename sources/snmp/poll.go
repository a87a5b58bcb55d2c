package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/snmp/mib"
)

func init() { Spec.NewCheck = newCheck }

// object is one polled OID and the metric name it is archived under.
type object struct {
	metric string
	oid    string // numeric, no leading dot
}

type check struct {
	env        module.Env
	client     *gosnmp.GoSNMP
	connected  bool
	gets       []object
	walks      []object
	bulk       bool
	indexLabel string
	row        sample.Row
}

func newCheck(env module.Env) (module.Check, error) {
	a := env.Attrs
	c := &check{env: env, bulk: a.Bool(FieldBulk), indexLabel: a.String(FieldIndexLabel)}
	set, err := LoadMIBs(a)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", env.Source, err)
	}
	if c.gets, err = objects(a.Map(FieldGet), set); err != nil {
		return nil, fmt.Errorf("source %s: get: %w", env.Source, err)
	}
	if c.walks, err = objects(a.Map(FieldWalk), set); err != nil {
		return nil, fmt.Errorf("source %s: walk: %w", env.Source, err)
	}
	g := &gosnmp.GoSNMP{
		Target:         env.Target,
		Port:           uint16(a.Int(FieldPort)),
		Transport:      "udp",
		Community:      a.String(FieldCommunity),
		Retries:        int(a.Int(FieldRetries)),
		MaxOids:        int(a.Int(FieldMaxOIDs)),
		MaxRepetitions: uint32(a.Int(FieldMaxRepetition)),
		Timeout:        env.Timeout,
	}
	switch a.String(FieldVersion) {
	case "1":
		g.Version = gosnmp.Version1
		c.bulk = false
	case "2c":
		g.Version = gosnmp.Version2c
	case "3":
		g.Version = gosnmp.Version3
		g.SecurityModel = gosnmp.UserSecurityModel
		u := UserFromAttrs(a)
		if g.MsgFlags, err = u.Flags(); err != nil {
			return nil, fmt.Errorf("source %s: %w", env.Source, err)
		}
		if g.SecurityParameters, err = u.Params(); err != nil {
			return nil, fmt.Errorf("source %s: %w", env.Source, err)
		}
		g.ContextName = a.String(FieldContextName)
	default:
		return nil, fmt.Errorf("source %s: unknown SNMP version %q", env.Source, a.String(FieldVersion))
	}
	c.client = g
	return c, nil
}

// UserFromAttrs reads the v3 user of a polling source.
func UserFromAttrs(a module.Attrs) User {
	return User{
		Name:         a.String(FieldUsername),
		Level:        a.String(FieldSecLevel),
		AuthProtocol: a.String(FieldAuthProtocol),
		AuthPass:     a.String(FieldAuthPassword),
		PrivProtocol: a.String(FieldPrivProtocol),
		PrivPass:     a.String(FieldPrivPassword),
	}
}

// objects turns a name → OID map into a list sorted by name, so that rows
// come out in a stable order. OIDs are numeric or names set knows.
func objects(m map[string]string, set *mib.Set) ([]object, error) {
	out := make([]object, 0, len(m))
	for name, oid := range m {
		n, err := set.Resolve(oid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, object{metric: name, oid: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].metric < out[j].metric })
	return out, nil
}

func (c *check) Run(ctx context.Context, w sample.Writer) sample.Result {
	g := c.client
	g.Context = ctx
	if dl, ok := ctx.Deadline(); ok {
		// Share the run's budget among the tries so a dead agent ends the
		// run before its deadline, with a clear message.
		if per := time.Until(dl) / time.Duration(g.Retries+1); per > 0 {
			g.Timeout = per
		}
	}
	if !c.connected {
		if err := g.Connect(); err != nil {
			return sample.Result{Status: sample.Critical, Message: fmt.Sprintf("connect %s:%d: %v", g.Target, g.Port, err)}
		}
		c.connected = true
	}
	missing := 0
	for start := 0; start < len(c.gets); start += g.MaxOids {
		end := min(start+g.MaxOids, len(c.gets))
		chunk := c.gets[start:end]
		oids := make([]string, len(chunk))
		for i, o := range chunk {
			oids[i] = o.oid
		}
		pkt, err := g.Get(oids)
		if err != nil {
			return c.fail(err)
		}
		if pkt.Error != gosnmp.NoError {
			return sample.Result{Status: sample.Critical, Available: true,
				Message: fmt.Sprintf("agent answered %v for get of %s", pkt.Error, oids[max(int(pkt.ErrorIndex)-1, 0)])}
		}
		for i, v := range pkt.Variables {
			if i >= len(chunk) {
				break
			}
			if Missing(v) {
				missing++
				continue
			}
			c.write(w, chunk[i].metric, v, "")
		}
	}
	for _, o := range c.walks {
		prefix := "." + o.oid + "."
		fn := func(v gosnmp.SnmpPDU) error {
			if Missing(v) {
				return nil
			}
			c.write(w, o.metric, v, strings.TrimPrefix(v.Name, prefix))
			return nil
		}
		var err error
		if c.bulk {
			err = g.BulkWalk(o.oid, fn)
		} else {
			err = g.Walk(o.oid, fn)
		}
		if err != nil {
			return c.fail(err)
		}
	}
	if missing > 0 {
		return sample.Result{Status: sample.Warning, Available: true,
			Message: fmt.Sprintf("%d of %d objects do not exist on the agent", missing, len(c.gets))}
	}
	return sample.Result{Status: sample.OK, Available: true}
}

func (c *check) write(w sample.Writer, metric string, v gosnmp.SnmpPDU, index string) {
	r := &c.row
	r.Reset()
	r.Metric = metric
	SetValue(r, v)
	r.Labels = append(r.Labels, sample.Label{Key: "type", Value: TypeName(v.Type)})
	if index != "" {
		r.Labels = append(r.Labels, sample.Label{Key: c.indexLabel, Value: index})
	}
	w.Write(r)
}

// fail turns a request error into a run result and drops the connection,
// so that the next run starts afresh (new socket, new v3 discovery).
func (c *check) fail(err error) sample.Result {
	_ = c.client.Close()
	c.connected = false
	msg := err.Error()
	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout(), strings.Contains(msg, "timeout"):
		return sample.Result{Status: sample.Critical,
			Message: fmt.Sprintf("timeout after %s: no answer from %s:%d", c.env.Timeout, c.client.Target, c.client.Port)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return sample.Result{Status: sample.Critical,
			Message: fmt.Sprintf("no SNMP agent at %s:%d (connection refused)", c.client.Target, c.client.Port)}
	case strings.Contains(msg, "authentic"), strings.Contains(msg, "wrong digest"),
		strings.Contains(msg, "decrypt"), strings.Contains(msg, "unknown user"), strings.Contains(msg, "report"):
		return sample.Result{Status: sample.Critical, Available: true, Message: "SNMPv3 authentication failed: " + msg}
	}
	return sample.Result{Status: sample.Critical, Message: msg}
}

// Close releases the socket.
func (c *check) Close() error {
	if c.connected {
		c.connected = false
		return c.client.Close()
	}
	return nil
}
