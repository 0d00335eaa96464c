package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"go.yaml.in/yaml/v3"
)

// settings resolves each option of a command from, in order of precedence:
// its command-line flag, its environment variable, the .env file in the
// working directory, the YAML --config file (keys are the flag names), and
// its default.
type settings struct {
	fs       *flag.FlagSet
	opts     []*option
	config   *option
	environ  func(string) (string, bool)
	sections map[string]*section
}

// section is a structured part of the YAML config file that is no flag
// (serve's routes:). YAML holds it re-encoded, nil when the file has none.
type section struct {
	YAML []byte
}

// section declares a structured config file key.
func (s *settings) section(name string) *section {
	if s.sections == nil {
		s.sections = map[string]*section{}
	}
	sec := &section{}
	s.sections[name] = sec
	return sec
}

type option struct {
	name, env, def string
	val            string
	from           string // where the value came from: flag, env, .env, config, default
}

func newSettings(cmd string, stderr io.Writer) *settings {
	s := &settings{fs: flag.NewFlagSet("llmscope "+cmd, flag.ContinueOnError), environ: os.LookupEnv}
	s.fs.SetOutput(stderr)
	s.config = s.str("config", "LLMSCOPE_CONFIG", "", "YAML config file; its keys are the flag names")
	return s
}

// str declares a string option; env may be empty.
func (s *settings) str(name, env, def, usage string) *option {
	o := &option{name: name, env: env, def: def}
	if env != "" {
		usage += " (env " + env + ")"
	}
	s.fs.StringVar(&o.val, name, def, usage)
	s.opts = append(s.opts, o)
	return o
}

// boolean declares a boolean option.
func (s *settings) boolean(name, env string, def bool, usage string) *option {
	o := s.str(name, env, strconv.FormatBool(def), usage)
	s.fs.Lookup(name).Value = boolValue{&o.val}
	return o
}

// list declares an option holding several values: the flag may be given
// more than once, the environment variable holds one value per line, and
// the config file a YAML list. Read it with Lines.
func (s *settings) list(name, env, usage string) *option {
	o := s.str(name, env, "", usage)
	s.fs.Lookup(name).Value = &listValue{p: &o.val}
	return o
}

// listValue appends each use of a flag as one more line.
type listValue struct {
	p   *string
	set bool
}

func (l *listValue) String() string {
	if l == nil || l.p == nil {
		return ""
	}
	return *l.p
}

func (l *listValue) Set(v string) error {
	if l.set {
		*l.p += "\n" + v
	} else {
		*l.p, l.set = v, true
	}
	return nil
}

// Lines returns a list option's values, one per non-empty line.
func (o *option) Lines() []string {
	var out []string
	for _, l := range strings.Split(o.val, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// autoBoolValue is a boolean flag that may also be "auto".
type autoBoolValue struct{ p *string }

func (b autoBoolValue) String() string {
	if b.p == nil {
		return "auto"
	}
	return *b.p
}
func (b autoBoolValue) Set(v string) error {
	if _, err := strconv.ParseBool(v); err != nil && v != "auto" {
		return fmt.Errorf("%q is not a boolean or auto", v)
	}
	*b.p = v
	return nil
}
func (b autoBoolValue) IsBoolFlag() bool { return true }

// autoBoolean declares an option that is true, false or "auto" (its default).
func (s *settings) autoBoolean(name, env, usage string) *option {
	o := s.str(name, env, "auto", usage)
	s.fs.Lookup(name).Value = autoBoolValue{&o.val}
	return o
}

// AutoBool reads an autoBoolean option: auto when it is "auto".
func (o *option) AutoBool(auto bool) (bool, error) {
	if o.val == "auto" {
		return auto, nil
	}
	return o.Bool()
}

// boolValue lets a string option be given as a bare --flag.
type boolValue struct{ p *string }

func (b boolValue) String() string {
	if b.p == nil {
		return "false"
	}
	return *b.p
}
func (b boolValue) Set(v string) error {
	if _, err := strconv.ParseBool(v); err != nil {
		return fmt.Errorf("%q is not a boolean", v)
	}
	*b.p = v
	return nil
}
func (b boolValue) IsBoolFlag() bool { return true }

// parse reads args and resolves every option.
func (s *settings) parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	set := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	dotenv, err := godotenv.Read(".env")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read .env: %w", err)
	}
	s.resolve(s.config, set, dotenv, nil)
	var file map[string]any
	if path := s.config.val; path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		known := map[string]bool{}
		for _, o := range s.opts {
			known[o.name] = true
		}
		for k, v := range file {
			if sec := s.sections[k]; sec != nil {
				if sec.YAML, err = yaml.Marshal(v); err != nil {
					return fmt.Errorf("config %s: %s: %w", path, k, err)
				}
				continue
			}
			if !known[k] {
				return fmt.Errorf("config %s: unknown key %q (keys are the flag names of %s)", path, k, s.fs.Name())
			}
		}
	}
	for _, o := range s.opts {
		if o != s.config {
			s.resolve(o, set, dotenv, file)
		}
	}
	return nil
}

func (s *settings) resolve(o *option, set map[string]bool, dotenv map[string]string, file map[string]any) {
	switch {
	case set[o.name]:
		o.from = "flag"
	case o.env != "" && nonEmpty(s.environ(o.env)):
		o.val, _ = s.environ(o.env)
		o.from = "env"
	case o.env != "" && dotenv[o.env] != "":
		o.val = dotenv[o.env]
		o.from = ".env"
	case file != nil && file[o.name] != nil:
		o.val = fmt.Sprint(file[o.name])
		if vs, ok := file[o.name].([]any); ok { // a list option's YAML list
			parts := make([]string, len(vs))
			for i, v := range vs {
				parts[i] = fmt.Sprint(v)
			}
			o.val = strings.Join(parts, "\n")
		}
		o.from = "config"
	default:
		o.val = o.def
		o.from = "default"
	}
}

func nonEmpty(v string, ok bool) bool { return ok && v != "" }

// secret returns an environment variable that is never a flag (API keys),
// from the environment or the .env file.
func secret(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	m, err := godotenv.Read(".env")
	if err != nil {
		return ""
	}
	return m[name]
}

func (o *option) String() string { return o.val }

func (o *option) Bool() (bool, error) {
	b, err := strconv.ParseBool(o.val)
	if err != nil {
		return false, fmt.Errorf("--%s: %q is not a boolean", o.name, o.val)
	}
	return b, nil
}

// Count reads a positive whole number (a limit, a count).
func (o *option) Count() (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(o.val))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--%s: %q is not a positive whole number", o.name, o.val)
	}
	return n, nil
}

func (o *option) Int() (int64, error) {
	n, err := parseSize(o.val)
	if err != nil {
		return 0, fmt.Errorf("--%s: %w", o.name, err)
	}
	return n, nil
}

func (o *option) Float() (float64, error) {
	f, err := strconv.ParseFloat(o.val, 64)
	if err != nil {
		return 0, fmt.Errorf("--%s: %q is not a number", o.name, o.val)
	}
	return f, nil
}

func (o *option) Duration() (time.Duration, error) {
	d, err := time.ParseDuration(o.val)
	if err != nil {
		return 0, fmt.Errorf("--%s: %q is not a duration (e.g. 150ms, 2s)", o.name, o.val)
	}
	return d, nil
}

// parseSize reads an integer with an optional KiB/MiB/GiB suffix.
func parseSize(v string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(v, suffix) {
			v, mult = strings.TrimSuffix(v, suffix), m
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer (suffixes KiB, MiB, GiB allowed)", v)
	}
	return n * mult, nil
}

// sources lists where each option came from, for a startup log line.
func (s *settings) sources() []string {
	var out []string
	for _, o := range s.opts {
		if o.from != "default" {
			out = append(out, o.name+"="+o.from)
		}
	}
	sort.Strings(out)
	return out
}
