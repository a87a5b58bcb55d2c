package nagiosimport

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options configure a conversion.
type Options struct {
	// Pipeline is the pipeline name of the generated file.
	Pipeline string
	// Resource is a resource.cfg with $USERn$ macros, read before the
	// files (nagios.cfg's resource_file is read too).
	Resource string
}

// DefaultPluginDir is $USER1$ when no resource file defines it.
const DefaultPluginDir = "/usr/lib/nagios/plugins"

// limits bound the work one configuration can cause. Macros that expand
// to macros, additive inheritance and wildcards multiply sizes: a few
// hundred bytes of input could otherwise expand to gigabytes.
type limits struct {
	// commandLine bounds the text a command line's macro expansion reads
	// and writes, in bytes.
	commandLine int
	// appended bounds the bytes additive inheritance ("+value") builds.
	appended int
	// pairs bounds the (host, service) pairs the services name, duplicates
	// and exclusions included.
	pairs int
	// memberships bounds the (hostgroup, host) pairs.
	memberships int
	// output bounds the text of the generated sources, in bytes.
	output int
}

var defaultLimits = limits{
	// Linux refuses a single argument above 128 KiB anyway.
	commandLine: 64 << 10,
	appended:    4 << 20,
	// A larger site is converted in parts (one run per cfg_dir).
	pairs:       250_000,
	memberships: 1_000_000,
	// 250,000 checks of 1 KiB each.
	output: 256 << 20,
}

// Convert reads the Nagios configuration files (nagios.cfg or object files)
// and returns the .recon text. Problems in the input are reported as
// comments in the output and returned as warnings; err is set only when
// nothing could be read.
func Convert(files []string, opts Options) (out []byte, warnings []string, err error) {
	if opts.Pipeline == "" {
		opts.Pipeline = "nagios"
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no configuration file given")
	}
	c := newConfig()
	c.baseDir = filepath.Dir(files[0])
	if opts.Resource != "" {
		if err := c.readResource(opts.Resource); err != nil {
			return nil, nil, fmt.Errorf("resource file: %w", err)
		}
	}
	for _, f := range files {
		if err := c.readFile(f); err != nil {
			return nil, nil, err
		}
	}
	cv := newConverter(c, opts)
	cv.run()
	return cv.render(), append(append([]string(nil), c.Problems...), cv.notes...), nil
}

// resolved is an object after template inheritance.
type resolved struct {
	obj   *object
	attrs map[string]directive
	// custom maps upper-case custom variable names (without the "_") to
	// their values; built on first use.
	custom map[string]string
}

func (r *resolved) get(name string) string { return r.attrs[name].Value }

type converter struct {
	cfg  *config
	opts Options
	// templates by object type and name.
	templates map[string]map[string]*object
	cache     map[*object]*resolved
	// resolving holds the objects whose templates are being resolved, to
	// find template loops.
	resolving map[*object]bool
	limits    limits
	// appended counts the bytes built by additive inheritance.
	appended  int
	commands  map[string]*resolved
	hosts     map[string]*resolved
	hostNames []string
	groups    map[string]*resolved

	sources []*source
	skipped []string
	// ignored counts directives Recon has no equivalent for, by name.
	ignored map[string]*ignoredDirective
	notes   []string
}

// source is one generated nagios source.
type source struct {
	name     string
	comment  []string
	target   string
	command  []string
	shell    bool
	period   time.Duration
	timeout  time.Duration
	disabled string // reason; the source is written as a comment
}

func newConverter(c *config, opts Options) *converter {
	return &converter{
		cfg: c, opts: opts,
		templates: map[string]map[string]*object{},
		cache:     map[*object]*resolved{},
		resolving: map[*object]bool{},
		limits:    defaultLimits,
		commands:  map[string]*resolved{},
		hosts:     map[string]*resolved{},
		groups:    map[string]*resolved{},
		ignored:   map[string]*ignoredDirective{},
	}
}

func (cv *converter) note(p pos, format string, args ...any) {
	cv.notes = append(cv.notes, p.String()+": "+fmt.Sprintf(format, args...))
}

// resolve applies `use` inheritance: the object's own directives first,
// then each template in the order listed (the first listed wins), each
// resolved recursively. "+value" appends to the value inherited from the
// first template that has one; "null" unsets it.
func (cv *converter) resolve(o *object) *resolved {
	if r, ok := cv.cache[o]; ok {
		return r
	}
	if cv.resolving[o] {
		cv.note(o.Pos, "template loop through %s", o.Attrs["name"].Value)
		return &resolved{obj: o, attrs: map[string]directive{}}
	}
	cv.resolving[o] = true
	defer delete(cv.resolving, o)
	attrs := map[string]directive{}
	for k, d := range o.Attrs {
		if k != "use" {
			attrs[k] = d
		}
	}
	if use, ok := o.get("use"); ok {
		// appended marks the "+value" directives already joined to an
		// inherited value: later templates do not append again.
		appended := map[string]bool{}
		for _, name := range splitList(use) {
			t := cv.templates[o.Type][name]
			if t == nil {
				cv.note(o.Attrs["use"].Pos, "%s template %q not found", o.Type, name)
				continue
			}
			parent := cv.resolve(t)
			for k, d := range parent.attrs {
				if k == "name" || k == "register" {
					continue
				}
				own, ok := attrs[k]
				switch {
				case !ok:
					attrs[k] = d
				case strings.HasPrefix(own.Value, "+") && !appended[k]:
					appended[k] = true
					n := len(d.Value) + len(own.Value)
					if cv.appended+n > cv.limits.appended {
						cv.note(own.Pos, "%s: additive inheritance builds more than %d bytes of values in this configuration; the inherited value is not appended", k, cv.limits.appended)
						continue
					}
					cv.appended += n
					attrs[k] = directive{Value: d.Value + "," + own.Value[1:], Pos: own.Pos}
				}
			}
		}
	}
	for k, d := range attrs {
		if strings.HasPrefix(d.Value, "+") {
			attrs[k] = directive{Value: d.Value[1:], Pos: d.Pos}
		}
		if d.Value == "null" {
			delete(attrs, k)
		}
	}
	r := &resolved{obj: o, attrs: attrs}
	cv.cache[o] = r
	return r
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func registered(o *object) bool {
	r, ok := o.get("register")
	return !ok || strings.TrimSpace(r) != "0"
}

// Directives by object type that the conversion uses.
var used = map[string]map[string]bool{
	"host": set("host_name", "address", "alias", "display_name", "check_command", "check_interval",
		"normal_check_interval", "hostgroups", "name", "register", "use", "active_checks_enabled",
		"check_period", "event_handler"),
	"service": set("host_name", "hostgroup_name", "service_description", "check_command", "check_interval",
		"normal_check_interval", "name", "register", "use", "active_checks_enabled", "display_name",
		"check_period", "event_handler"),
}

// Directives reported per source (they change when or how checks run).
var perSource = []string{"check_period", "event_handler"}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func (cv *converter) run() {
	for _, o := range cv.cfg.Objects {
		if name, ok := o.get("name"); ok {
			m := cv.templates[o.Type]
			if m == nil {
				m = map[string]*object{}
				cv.templates[o.Type] = m
			}
			if _, dup := m[name]; dup {
				cv.note(o.Pos, "%s template %q defined again; the first definition is used", o.Type, name)
				continue
			}
			m[name] = o
		}
	}
	var services []*object
	for _, o := range cv.cfg.Objects {
		if !registered(o) {
			continue
		}
		switch o.Type {
		case "command":
			r := cv.resolve(o)
			name := r.get("command_name")
			if name == "" {
				cv.note(o.Pos, "command without command_name")
				continue
			}
			cv.commands[name] = r
		case "host":
			r := cv.resolve(o)
			name := r.get("host_name")
			if name == "" {
				cv.note(o.Pos, "host without host_name")
				continue
			}
			if _, dup := cv.hosts[name]; dup {
				cv.note(o.Pos, "host %q defined again; the first definition is used", name)
				continue
			}
			cv.hosts[name] = r
			cv.hostNames = append(cv.hostNames, name)
			cv.countIgnored(r)
		case "hostgroup":
			r := cv.resolve(o)
			if name := r.get("hostgroup_name"); name != "" {
				cv.groups[name] = r
			}
		case "service":
			services = append(services, o)
		default:
			label := o.Attrs[o.Type+"_name"].Value
			if label == "" {
				label = o.Attrs["name"].Value
			}
			cv.skipped = append(cv.skipped, fmt.Sprintf("define %s %s (%s): %s", o.Type, label, o.Pos, whyNot(o.Type)))
		}
	}
	sort.Strings(cv.hostNames)
	members := cv.groupMembers()

	type key struct{ host, desc string }
	type entry struct {
		svc    *resolved
		direct bool
	}
	entries := map[key]entry{}
	var order []key
	pairs := 0
	for i, o := range services {
		if pairs > cv.limits.pairs {
			cv.note(o.Pos, "the services name more than %d (host, service) pairs; this service and the %d after it are not converted", cv.limits.pairs, len(services)-i-1)
			break
		}
		r := cv.resolve(o)
		desc := r.get("service_description")
		if desc == "" {
			cv.note(o.Pos, "service without service_description")
			continue
		}
		direct, viaGroup, examined := cv.serviceHosts(r, members)
		pairs += examined
		if len(direct)+len(viaGroup) == 0 {
			cv.skipped = append(cv.skipped, fmt.Sprintf("service %q (%s): no host", desc, o.Pos))
			continue
		}
		cv.countIgnored(r)
		var again []string // hosts where the service was defined before
		var first pos
		add := func(h string, isDirect bool) {
			k := key{h, desc}
			prev, ok := entries[k]
			switch {
			case !ok:
				order = append(order, k)
				entries[k] = entry{r, isDirect}
			case isDirect && !prev.direct:
				// A service on the host itself overrides one from a group.
				entries[k] = entry{r, isDirect}
			default:
				if len(again) == 0 {
					first = prev.svc.obj.Pos
				}
				again = append(again, h)
			}
		}
		for _, h := range direct {
			add(h, true)
		}
		for _, h := range viaGroup {
			add(h, false)
		}
		switch {
		case len(again) == 1:
			cv.note(o.Pos, "service %q on host %s defined again (first at %s); the first definition is used", desc, again[0], first)
		case len(again) > 1:
			cv.note(o.Pos, "service %q on %d hosts (%s, …) defined again (first at %s); the first definitions are used", desc, len(again), again[0], first)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].host != order[j].host {
			return order[i].host < order[j].host
		}
		return order[i].desc < order[j].desc
	})

	names := &sourceNames{taken: map[string]bool{}, next: map[string]int{}}
	byHost := map[string][]key{}
	for _, k := range order {
		byHost[k.host] = append(byHost[k.host], k)
	}
	// size adds up the text of the sources (commands expand, a host's
	// address repeats in each of its checks).
	size := 0
	full := func(p pos, what string) bool {
		if size <= cv.limits.output {
			return false
		}
		cv.note(p, "the generated sources pass %d bytes; %s and the checks after it are not converted", cv.limits.output, what)
		return true
	}
	for _, h := range cv.hostNames {
		host := cv.hosts[h]
		if host.get("check_command") != "" {
			if full(host.obj.Pos, "the host check of "+h) {
				return
			}
			size += cv.add(names, cv.hostSource(host))
		}
		for _, k := range byHost[h] {
			svc := entries[k].svc
			if full(svc.obj.Pos, fmt.Sprintf("service %q on host %s", k.desc, h)) {
				return
			}
			size += cv.add(names, cv.serviceSource(host, svc))
		}
	}
}

func whyNot(typ string) string {
	switch typ {
	case "contact", "contactgroup", "serviceescalation", "hostescalation", "notificationway":
		return "Recon alerts with rules and sinks (notify = [...]); not converted"
	case "timeperiod":
		return "Recon sources run all the time; not converted"
	case "servicegroup":
		return "groups are not needed to select samples (rules select by source, module or label); not converted"
	case "hostdependency", "servicedependency":
		return "dependencies are not converted; express them in rules"
	}
	return "not converted"
}

// ignoredDirective counts the uses of a directive that is not converted
// and remembers where it is set (the first place seen).
type ignoredDirective struct {
	count int
	at    pos
}

func (cv *converter) countIgnored(r *resolved) {
	u := used[r.obj.Type]
	for k, d := range r.attrs {
		if u[k] || strings.HasPrefix(k, "_") {
			continue
		}
		if ig := cv.ignored[k]; ig != nil {
			ig.count++
			continue
		}
		cv.ignored[k] = &ignoredDirective{count: 1, at: d.Pos}
	}
}

// groupMembers returns the hosts of every hostgroup: its members ("*" is
// every host), the members of its hostgroup_members, and the hosts that
// name it in their hostgroups directive. At most limits.memberships
// (group, host) pairs are collected; the groups past that are noted and
// empty.
func (cv *converter) groupMembers() map[string]map[string]bool {
	// named lists the hosts that name a group in their hostgroups directive.
	named := map[string][]string{}
	for _, h := range cv.hostNames {
		for _, gn := range splitList(cv.hosts[h].get("hostgroups")) {
			if cv.groups[gn] == nil {
				cv.note(cv.hosts[h].attrs["hostgroups"].Pos, "host %s: unknown hostgroup %q", h, gn)
				continue
			}
			named[gn] = append(named[gn], h)
		}
	}
	out := map[string]map[string]bool{}
	budget := cv.limits.memberships
	var collect func(name string, seen map[string]bool) map[string]bool
	collect = func(name string, seen map[string]bool) map[string]bool {
		if m, ok := out[name]; ok {
			return m
		}
		m := map[string]bool{}
		if seen[name] {
			return m
		}
		seen[name] = true
		full := false
		add := func(h string) {
			switch {
			case full || m[h]:
			case budget == 0:
				full = true
			default:
				m[h] = true
				budget--
			}
		}
		g := cv.groups[name]
		for _, h := range splitList(g.get("members")) {
			switch {
			case h == "*":
				for _, n := range cv.hostNames {
					if add(n); full {
						break
					}
				}
			case cv.hosts[h] == nil:
				cv.note(g.attrs["members"].Pos, "hostgroup %s: unknown host %q", name, h)
			default:
				add(h)
			}
		}
		for _, sub := range splitList(g.get("hostgroup_members")) {
			if cv.groups[sub] == nil {
				cv.note(g.attrs["hostgroup_members"].Pos, "hostgroup %s: unknown hostgroup %q", name, sub)
				continue
			}
			for h := range collect(sub, seen) {
				add(h)
			}
		}
		for _, h := range named[name] {
			add(h)
		}
		if full {
			cv.note(g.obj.Pos, "hostgroup %s: the hostgroups have more than %d members in total; its members are not converted", name, cv.limits.memberships)
			m = map[string]bool{}
		}
		out[name] = m
		return m
	}
	names := make([]string, 0, len(cv.groups))
	for name := range cv.groups {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		collect(name, map[string]bool{})
	}
	return out
}

// serviceHosts returns the hosts a service applies to, named directly
// (host_name; "*" is every host) and through hostgroup_name, minus the
// "!excluded" ones, sorted; examined counts the (host, service) pairs
// looked at, excluded ones included.
func (cv *converter) serviceHosts(svc *resolved, members map[string]map[string]bool) (direct, viaGroup []string, examined int) {
	exclude := map[string]bool{}
	d := map[string]bool{}
	all := false
	for _, h := range splitList(svc.get("host_name")) {
		examined++
		switch {
		case strings.HasPrefix(h, "!"):
			exclude[h[1:]] = true
		case h == "*":
			if all {
				continue
			}
			all = true
			examined += len(cv.hostNames)
			for _, n := range cv.hostNames {
				d[n] = true
			}
		case cv.hosts[h] == nil:
			cv.note(svc.attrs["host_name"].Pos, "service %q: unknown host %q", svc.get("service_description"), h)
		default:
			d[h] = true
		}
	}
	g := map[string]bool{}
	groups := map[string]bool{}
	for _, gn := range splitList(svc.get("hostgroup_name")) {
		examined++
		if groups[gn] {
			continue
		}
		groups[gn] = true
		neg := strings.HasPrefix(gn, "!")
		gn = strings.TrimPrefix(gn, "!")
		m, ok := members[gn]
		if !ok {
			cv.note(svc.attrs["hostgroup_name"].Pos, "service %q: unknown hostgroup %q", svc.get("service_description"), gn)
			continue
		}
		examined += len(m)
		for h := range m {
			if neg {
				exclude[h] = true
			} else {
				g[h] = true
			}
		}
	}
	for h := range d {
		if !exclude[h] {
			direct = append(direct, h)
		}
	}
	for h := range g {
		if !exclude[h] && !d[h] {
			viaGroup = append(viaGroup, h)
		}
	}
	sort.Strings(direct)
	sort.Strings(viaGroup)
	return direct, viaGroup, examined
}

// sourceNames makes source names unique: a name already taken gets the
// next free suffix _2, _3 …
type sourceNames struct {
	taken map[string]bool
	// next is the next suffix to try for a base name.
	next map[string]int
}

func (n *sourceNames) unique(base string) string {
	name := base
	for i := n.next[base]; n.taken[name]; i++ {
		if i < 2 {
			i = 2
		}
		name = base + "_" + strconv.Itoa(i)
		n.next[base] = i + 1
	}
	n.taken[name] = true
	return name
}

// add names s uniquely and keeps it; it returns the length of s's text.
func (cv *converter) add(names *sourceNames, s *source) int {
	s.name = names.unique(s.name)
	cv.sources = append(cv.sources, s)
	n := len(s.name) + len(s.target) + len(s.disabled)
	for _, c := range s.comment {
		n += len(c)
	}
	for _, w := range s.command {
		n += len(w)
	}
	return n
}

func hostTarget(host *resolved) string {
	if a := host.get("address"); a != "" {
		return a
	}
	return host.get("host_name")
}

func (cv *converter) hostSource(host *resolved) *source {
	name := host.get("host_name")
	s := &source{
		name:    sanitize(name + "_host"),
		target:  hostTarget(host),
		comment: []string{fmt.Sprintf("host %s: host check (%s)", name, host.obj.Pos)},
	}
	cv.fill(s, host, nil, host.attrs["check_command"], cv.cfg.HostTimeout)
	return s
}

func (cv *converter) serviceSource(host, svc *resolved) *source {
	hname, desc := host.get("host_name"), svc.get("service_description")
	s := &source{
		name:    sanitize(hname + "_" + desc),
		target:  hostTarget(host),
		comment: []string{fmt.Sprintf("host %s, service %q (%s)", hname, desc, svc.obj.Pos)},
	}
	cv.fill(s, host, svc, svc.attrs["check_command"], cv.cfg.CheckTimeout)
	return s
}

// fill sets a source's command, period and timeout from an object (svc,
// or the host itself when svc is nil).
func (cv *converter) fill(s *source, host, svc *resolved, check directive, timeoutSec int) {
	obj := host
	if svc != nil {
		obj = svc
	}
	for _, k := range perSource {
		d, ok := obj.attrs[k]
		if !ok || (k == "check_period" && d.Value == "24x7") {
			continue
		}
		s.comment = append(s.comment, fmt.Sprintf("not converted: %s %s (%s)", k, d.Value, d.Pos))
	}
	if v := obj.get("active_checks_enabled"); v == "0" {
		s.disabled = "active checks are disabled (active_checks_enabled 0): a passive check has no plugin to run"
		return
	}
	if check.Value == "" {
		s.disabled = "no check_command"
		return
	}
	interval := obj.get("check_interval")
	if interval == "" {
		interval = obj.get("normal_check_interval")
	}
	if interval == "" {
		interval = "5"
	}
	iv, err := strconv.ParseFloat(interval, 64)
	if err != nil || iv < 0 {
		s.disabled = fmt.Sprintf("check_interval %q is not a number", interval)
		return
	}
	if iv == 0 {
		s.disabled = "check_interval 0: not scheduled"
		return
	}
	s.period = time.Duration(iv * float64(cv.cfg.IntervalLength) * float64(time.Second)).Round(time.Millisecond)
	if s.period < time.Second {
		s.period = time.Second
	}
	s.timeout = time.Duration(timeoutSec) * time.Second
	if s.timeout >= s.period {
		// A run must end before the next one starts.
		s.timeout = (s.period * 3 / 4).Round(time.Millisecond)
		if s.timeout >= 2*time.Second {
			s.timeout = s.timeout.Truncate(time.Second)
		}
		s.comment = append(s.comment, fmt.Sprintf("timeout lowered from %ds to %s to stay below the period", timeoutSec, s.timeout))
	}
	cmdName, args, _ := strings.Cut(check.Value, "!")
	cmd := cv.commands[cmdName]
	if cmd == nil {
		s.disabled = fmt.Sprintf("command %q (%s) is not defined", cmdName, check.Pos)
		return
	}
	var argv []string
	if args != "" {
		argv = strings.Split(args, "!")
	}
	line, err := cv.expand(cmd.get("command_line"), argv, host, svc)
	if err != nil {
		s.disabled = fmt.Sprintf("command %s (%s): %v", cmdName, cmd.obj.Pos, err)
		return
	}
	s.comment[0] += fmt.Sprintf(", command %s (%s)", cmdName, cmd.obj.Pos)
	if strings.TrimSpace(line) == "" {
		s.disabled = fmt.Sprintf("command %s (%s): the command line is empty", cmdName, cmd.obj.Pos)
		return
	}
	words, ok := splitWords(line)
	if ok && words[0] == "" {
		s.disabled = fmt.Sprintf("command %s (%s): the plugin name is empty", cmdName, cmd.obj.Pos)
		return
	}
	if !ok {
		s.shell = true
		s.command = []string{escapeDollar(line)}
		return
	}
	for _, w := range words {
		s.command = append(s.command, escapeDollar(w))
	}
}

// hostAddress stands for $HOSTADDRESS$ during expansion: it stays a macro
// for the runtime, while every other '$' is escaped.
const hostAddress = "\x00HOSTADDRESS\x00"

func escapeDollar(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "$", "$$"), hostAddress, "$HOSTADDRESS$")
}

// expand replaces Nagios macros in a command line: $ARGn$ (whose values
// are expanded too), $USERn$, host and service names and custom
// variables. $HOSTADDRESS$ is left for the runtime. The text read and
// written is limited (limits.commandLine): values that refer to each other
// would otherwise multiply the line's length at every level.
func (cv *converter) expand(line string, args []string, host, svc *resolved) (string, error) {
	var b strings.Builder
	var unknown []string
	seen := map[string]bool{}
	budget := cv.limits.commandLine
	var walk func(s string, depth int) bool
	// walk reports false when the budget is spent.
	walk = func(s string, depth int) bool {
		if budget -= len(s); budget < 0 {
			return false
		}
		for i := 0; i < len(s); {
			if s[i] != '$' {
				b.WriteByte(s[i])
				i++
				continue
			}
			end := strings.IndexByte(s[i+1:], '$')
			if end < 0 {
				b.WriteString(s[i:])
				return true
			}
			name := s[i+1 : i+1+end]
			i += end + 2
			if name == "" {
				b.WriteByte('$') // $$
				continue
			}
			v, ok, expandAgain := cv.macro(name, args, host, svc)
			if !ok {
				if !seen[name] {
					seen[name] = true
					unknown = append(unknown, "$"+name+"$")
				}
				continue
			}
			if expandAgain && depth < 2 {
				if !walk(v, depth+1) {
					return false
				}
				continue
			}
			if budget -= len(v); budget < 0 {
				return false
			}
			b.WriteString(v)
		}
		return true
	}
	if !walk(line, 0) {
		return "", fmt.Errorf("the command line is longer than %d bytes after macro expansion", cv.limits.commandLine)
	}
	if len(unknown) > 0 {
		return "", fmt.Errorf("macros with no Recon equivalent: %s", strings.Join(unknown, " "))
	}
	return b.String(), nil
}

func (cv *converter) macro(name string, args []string, host, svc *resolved) (value string, ok, expandAgain bool) {
	if n, found := strings.CutPrefix(name, "ARG"); found {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 {
			if i <= len(args) {
				return args[i-1], true, true
			}
			return "", true, false
		}
	}
	if strings.HasPrefix(name, "USER") {
		if v, found := cv.cfg.Resource[name]; found {
			return v, true, true
		}
		if name == "USER1" {
			return DefaultPluginDir, true, false
		}
		return "", false, false
	}
	switch name {
	case "HOSTADDRESS":
		return hostAddress, true, false
	case "HOSTNAME":
		return host.get("host_name"), true, false
	case "HOSTALIAS":
		if a := host.get("alias"); a != "" {
			return a, true, false
		}
		return host.get("host_name"), true, false
	case "HOSTDISPLAYNAME":
		if a := host.get("display_name"); a != "" {
			return a, true, false
		}
		return host.get("host_name"), true, false
	}
	if svc != nil {
		switch name {
		case "SERVICEDESC":
			return svc.get("service_description"), true, false
		case "SERVICEDISPLAYNAME":
			if a := svc.get("display_name"); a != "" {
				return a, true, false
			}
			return svc.get("service_description"), true, false
		}
	}
	if v, found := strings.CutPrefix(name, "_HOST"); found {
		if d, ok := customVar(host, v); ok {
			return d, true, true
		}
	}
	if v, found := strings.CutPrefix(name, "_SERVICE"); found && svc != nil {
		if d, ok := customVar(svc, v); ok {
			return d, true, true
		}
	}
	return "", false, false
}

// customVar finds a custom variable (_NAME); Nagios matches them without
// regard to case. When two directives differ only in case, the first in
// name order wins.
func customVar(r *resolved, name string) (string, bool) {
	if r.custom == nil {
		r.custom = map[string]string{}
		keys := make([]string, 0, len(r.attrs))
		for k := range r.attrs {
			if strings.HasPrefix(k, "_") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			u := strings.ToUpper(k[1:])
			if _, dup := r.custom[u]; !dup {
				r.custom[u] = r.attrs[k].Value
			}
		}
	}
	v, ok := r.custom[strings.ToUpper(name)]
	return v, ok
}

// splitWords splits a command line as /bin/sh would for simple commands:
// words separated by blanks, with '…', "…" and backslash quoting. ok is false
// when the line uses shell features (pipes, redirections, variables,
// globs …): it must then run with shell = true.
func splitWords(line string) (words []string, ok bool) {
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, false
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				} else if line[i] == '$' || line[i] == '`' {
					return nil, false
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, false
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(line) {
				return nil, false
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`*?[]{}~#!", c) >= 0 && !(c == '#' && inWord):
			return nil, false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, len(words) > 0
}

// sanitize turns a name into a .recon identifier: lower case letters,
// digits and single underscores, not starting with a digit.
func sanitize(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.TrimSuffix(b.String(), "_")
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "n_" + out
	}
	switch out {
	case "and", "or", "not", "true", "false":
		out += "_"
	}
	return out
}
