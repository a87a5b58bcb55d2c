// Package nagiosimport converts a Nagios (or Icinga 1) object configuration
// into a .recon file: one nagios source per host check and per (host,
// service), with templates, macros and intervals resolved, and a comment on
// everything that could not be converted. reconc wires it as
// `reconc import nagios`.
package nagiosimport

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// pos is a place in a configuration file.
type pos struct {
	File string
	Line int
}

func (p pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// directive is one "name value" line of an object definition.
type directive struct {
	Value string
	Pos   pos
}

// object is one `define TYPE { … }` block, as written (before inheritance).
type object struct {
	Type  string
	Pos   pos
	Attrs map[string]directive
	// Order keeps the directive names in file order, for stable output.
	Order []string
}

func (o *object) get(name string) (string, bool) {
	d, ok := o.Attrs[name]
	return d.Value, ok
}

// config is everything read from the input files.
type config struct {
	Objects []*object
	// Resource holds $USERn$ macros.
	Resource map[string]string
	// IntervalLength is nagios.cfg's interval_length in seconds (default 60).
	IntervalLength int
	// CheckTimeout is nagios.cfg's service_check_timeout in seconds.
	CheckTimeout int
	HostTimeout  int
	// Files lists the files read, in order.
	Files []string
	// Problems are input errors, with their position.
	Problems []string
	seen     map[string]bool
	baseDir  string
}

func newConfig() *config {
	return &config{
		Resource:       map[string]string{},
		IntervalLength: 60,
		CheckTimeout:   60,
		HostTimeout:    30,
		seen:           map[string]bool{},
	}
}

func (c *config) problem(p pos, format string, args ...any) {
	c.Problems = append(c.Problems, p.String()+": "+fmt.Sprintf(format, args...))
}

// rel shortens a path for comments: relative to the first input's
// directory when it is below it.
func (c *config) rel(path string) string {
	if c.baseDir == "" {
		return path
	}
	if r, err := filepath.Rel(c.baseDir, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// readFile reads a main configuration (nagios.cfg: key=value lines,
// following cfg_file, cfg_dir and resource_file) or an object file (define
// blocks); a file may mix both.
func (c *config) readFile(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if c.seen[abs] {
		return nil
	}
	c.seen[abs] = true
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return c.read(c.rel(path), filepath.Dir(path), f)
}

// read parses one configuration file's text; dir resolves the relative
// paths it refers to.
func (c *config) read(name, dir string, r io.Reader) error {
	c.Files = append(c.Files, name)
	var cur *object
	awaitBrace := false // "define host" with "{" on the next line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		p := pos{name, line}
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		if cur == nil {
			if rest, ok := strings.CutPrefix(text, "define"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '{') {
				typ := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stripComment(rest)), "{"))
				if typ == "" {
					c.problem(p, "define without an object type")
				}
				cur = &object{Type: typ, Pos: p, Attrs: map[string]directive{}}
				awaitBrace = !strings.HasSuffix(stripComment(rest), "{")
				continue
			}
			key, value, ok := strings.Cut(text, "=")
			if !ok {
				c.problem(p, "cannot read %q outside a define block", text)
				continue
			}
			if err := c.mainDirective(dir, p, strings.TrimSpace(key), strings.TrimSpace(value)); err != nil {
				return err
			}
			continue
		}
		if awaitBrace {
			awaitBrace = false
			if text == "{" {
				continue
			}
			if !strings.HasPrefix(text, "{") {
				c.problem(p, "expected { after define %s", cur.Type)
			}
			text = strings.TrimSpace(strings.TrimPrefix(text, "{"))
			if text == "" {
				continue
			}
		}
		text = stripComment(text)
		closing := strings.HasSuffix(text, "}")
		text = strings.TrimSpace(strings.TrimSuffix(text, "}"))
		if text != "" {
			key, value, _ := strings.Cut(strings.ReplaceAll(text, "\t", " "), " ")
			value = strings.TrimSpace(value)
			if _, dup := cur.Attrs[key]; !dup {
				cur.Order = append(cur.Order, key)
			}
			cur.Attrs[key] = directive{Value: value, Pos: p}
		}
		if closing {
			c.Objects = append(c.Objects, cur)
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if cur != nil {
		c.problem(cur.Pos, "define %s is not closed with }", cur.Type)
	}
	return nil
}

// stripComment removes a trailing ";" comment (Nagios' inline comments;
// "\;" is a literal semicolon).
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ';' && (i == 0 || s[i-1] != '\\') {
			return strings.TrimSpace(s[:i])
		}
	}
	return strings.ReplaceAll(s, `\;`, ";")
}

// mainDirective handles the nagios.cfg settings that matter for the
// conversion; the others are scheduler tuning Recon does not need.
func (c *config) mainDirective(dir string, p pos, key, value string) error {
	resolvePath := func(v string) string {
		if filepath.IsAbs(v) {
			return v
		}
		return filepath.Join(dir, v)
	}
	switch key {
	case "cfg_file":
		if err := c.readFile(resolvePath(value)); err != nil {
			c.problem(p, "cfg_file: %v", err)
		}
	case "cfg_dir":
		if err := c.readDir(resolvePath(value)); err != nil {
			c.problem(p, "cfg_dir: %v", err)
		}
	case "resource_file":
		if err := c.readResource(resolvePath(value)); err != nil {
			c.problem(p, "resource_file: %v", err)
		}
	case "interval_length", "service_check_timeout", "host_check_timeout":
		var n int
		if _, err := fmt.Sscanf(value, "%d", &n); err != nil || n <= 0 {
			c.problem(p, "%s: want a positive number of seconds, got %q", key, value)
			return nil
		}
		switch key {
		case "interval_length":
			c.IntervalLength = n
		case "service_check_timeout":
			c.CheckTimeout = n
		default:
			c.HostTimeout = n
		}
	}
	return nil
}

// readDir reads every *.cfg file below dir, in lexical order, as Nagios does.
func (c *config) readDir(dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".cfg") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		if err := c.readFile(f); err != nil {
			return err
		}
	}
	return nil
}

// readResource reads $USERn$=value lines.
func (c *config) readResource(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	name := c.rel(path)
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		if !ok || !strings.HasPrefix(key, "$USER") || !strings.HasSuffix(key, "$") || len(key) < 7 {
			c.problem(pos{name, line}, "resource file: cannot read %q (want $USERn$=value)", text)
			continue
		}
		c.Resource[strings.Trim(key, "$")] = strings.TrimSpace(value)
	}
	return sc.Err()
}
