package route

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by New to zero fields of a Config.
const (
	DefaultTries            = 2
	DefaultCooldown         = 30 * time.Second
	DefaultFailureThreshold = 3
	DefaultBackoffBase      = 250 * time.Millisecond
	DefaultBackoffMax       = 8 * time.Second
	DefaultMaxWait          = 30 * time.Second
	DefaultWeight           = 1
)

// API names: the API shape a deployment speaks. openai and azure share the
// OpenAI body shape (see Shape).
const (
	APIOpenAI    = "openai"
	APIAnthropic = "anthropic"
	APIGemini    = "gemini"
	APIAzure     = "azure"
)

// Config is the routing configuration (serve's routes: section). Zero
// durations and counts take the Default* values.
type Config struct {
	// Routes are matched in order against a request's model: the first
	// route that matches and has a deployment of the request's shape wins.
	Routes []RouteConfig `yaml:"routes"`
	// BackoffBase and BackoffMax bound the exponential backoff between two
	// tries of the same deployment (defaults 250ms and 8s).
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	// MaxWait caps a wait asked by Retry-After / retry-after-ms (default
	// 30s): a longer ask moves on to the next deployment instead.
	MaxWait time.Duration `yaml:"max_wait"`
	// FailureThreshold is the number of consecutive failures after which a
	// deployment cools down (default 3).
	FailureThreshold int `yaml:"failure_threshold"`
}

// RouteConfig is one route: which models it serves and where they go.
type RouteConfig struct {
	// Name identifies the route in fallbacks, errors and events; default:
	// Match.
	Name string `yaml:"name"`
	// Match is an exact model name or a glob: '*' matches any run of
	// characters (including '/'), '?' any one character.
	Match string `yaml:"match"`
	// Deployments serve the route, chosen by weight.
	Deployments []DeploymentConfig `yaml:"deployments"`
	// Retries is the number of tries of one deployment before moving on
	// (1: no retry of the same deployment; default 2).
	Retries int `yaml:"retries"`
	// Fallbacks name other routes (all their deployments) or single
	// deployments, tried in order after the route's own deployments. A
	// fallback route's own fallbacks are not followed.
	Fallbacks []string `yaml:"fallbacks"`
	// Cooldown is how long a failing deployment of this route is skipped
	// (default 30s).
	Cooldown time.Duration `yaml:"cooldown"`
}

// DeploymentConfig is one upstream deployment. A deployment name is global:
// two routes may list the same name only with identical settings (the
// first route's retries and cooldown apply to it).
type DeploymentConfig struct {
	Name string `yaml:"name"`
	// API is one of openai, anthropic, gemini, azure.
	API string `yaml:"api"`
	// URL is the base URL requests are sent to.
	URL string `yaml:"url"`
	// KeyEnv names the environment variable holding the API key. The key
	// itself never appears in config, errors or String output.
	KeyEnv string `yaml:"key_env"`
	// Model, when set, replaces the request's model name upstream.
	Model string `yaml:"model"`
	// Weight is the share of first tries (default 1).
	Weight int `yaml:"weight"`
	// Timeout bounds the wait for response headers (0: the gateway's).
	Timeout time.Duration `yaml:"timeout"`
}

// Shape returns the request body shape of an API: "openai" for openai and
// azure, the API itself otherwise. A plan only holds deployments whose shape
// is the request's; the gateway adapts path and auth to Deployment.API.
func Shape(api string) string {
	if api == APIAzure {
		return APIOpenAI
	}
	return api
}

func validAPI(api string) bool {
	switch api {
	case APIOpenAI, APIAnthropic, APIGemini, APIAzure:
		return true
	}
	return false
}

// RouteName returns the route's name: Name, or Match when Name is empty.
func (r RouteConfig) RouteName() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Match
}

// Validate reports every problem of the configuration at once (joined),
// each naming its route and deployment. It does not read keys: New does.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Routes) == 0 {
		add("route: no routes")
	}
	if c.BackoffBase < 0 || c.BackoffMax < 0 || c.MaxWait < 0 {
		add("route: backoff_base, backoff_max and max_wait must not be negative")
	}
	if c.BackoffBase > 0 && c.BackoffMax > 0 && c.BackoffBase > c.BackoffMax {
		add("route: backoff_base %s is above backoff_max %s", c.BackoffBase, c.BackoffMax)
	}
	if c.FailureThreshold < 0 {
		add("route: failure_threshold must not be negative")
	}
	routes := map[string]int{}
	deps := map[string]DeploymentConfig{}
	for i, r := range c.Routes {
		name := r.RouteName()
		where := fmt.Sprintf("route %q", name)
		if name == "" {
			where = fmt.Sprintf("route #%d", i+1)
		}
		if r.Match == "" {
			add("%s: match is empty", where)
		}
		if name != "" {
			if j, dup := routes[name]; dup {
				add("%s: name already used by route #%d (give one a distinct name)", where, j+1)
			} else {
				routes[name] = i
			}
		}
		if len(r.Deployments) == 0 && len(r.Fallbacks) == 0 {
			add("%s: no deployments and no fallbacks", where)
		}
		if r.Retries < 0 {
			add("%s: retries must not be negative", where)
		}
		if r.Cooldown < 0 {
			add("%s: cooldown must not be negative", where)
		}
		inRoute := map[string]bool{}
		for j, d := range r.Deployments {
			errs = append(errs, validateDeployment(where, j, d)...)
			if d.Name == "" {
				continue
			}
			if inRoute[d.Name] {
				add("%s: deployment %q: listed twice", where, d.Name)
			}
			inRoute[d.Name] = true
			if prev, dup := deps[d.Name]; dup && prev != d {
				add("%s: deployment %q: already defined differently by another route", where, d.Name)
			} else if !dup {
				deps[d.Name] = d
			}
		}
	}
	for _, r := range c.Routes {
		name := r.RouteName()
		for _, f := range r.Fallbacks {
			_, isRoute := routes[f]
			_, isDep := deps[f]
			switch {
			case f == "":
				add("route %q: empty fallback name", name)
			case f == name:
				add("route %q: fallback %q is the route itself", name, f)
			case isRoute && isDep:
				add("route %q: fallback %q is both a route and a deployment name", name, f)
			case !isRoute && !isDep:
				add("route %q: fallback %q is neither a route nor a deployment", name, f)
			}
		}
	}
	return errors.Join(errs...)
}

func validateDeployment(where string, j int, d DeploymentConfig) []error {
	var errs []error
	if d.Name == "" {
		where = fmt.Sprintf("%s: deployment #%d", where, j+1)
		errs = append(errs, fmt.Errorf("%s: name is empty", where))
	} else {
		where = fmt.Sprintf("%s: deployment %q", where, d.Name)
	}
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(where+": "+format, args...))
	}
	if !validAPI(d.API) {
		add("api %q is not one of openai, anthropic, gemini, azure", d.API)
	}
	// The URL is not echoed: a query could hold a key.
	if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url is not an absolute http(s) URL")
	} else if u.User != nil {
		add("url must not hold credentials (use key_env)")
	}
	if d.KeyEnv != "" && !validEnvName(d.KeyEnv) {
		add("key_env %q is not an environment variable name", d.KeyEnv)
	}
	if d.Weight < 0 {
		add("weight %d is negative", d.Weight)
	}
	if d.Timeout < 0 {
		add("timeout must not be negative")
	}
	return errs
}

func validEnvName(s string) bool {
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.BackoffBase == 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffBase)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	return c
}

// Match reports whether model matches the glob pattern: '*' matches any
// run of characters (including none and '/'), '?' exactly one character;
// everything else matches itself.
func Match(patternStr, modelStr string) bool {
	pattern, model := []rune(patternStr), []rune(modelStr)
	// Iterative matching with backtracking to the last '*'.
	p, m := 0, 0
	star, mark := -1, 0
	for m < len(model) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == model[m]) && pattern[p] != '*':
			p++
			m++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, m
			p++
		case star >= 0:
			p = star + 1
			mark++
			m = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// redactURL returns u without user info and query, for String output.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid url)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return strings.TrimRight(u.String(), "/")
}
