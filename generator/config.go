package generator

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/offshoot-dev/offshoot/clone"
)

// ConfigFile is the path of the configuration in the environments repo.
const ConfigFile = "offshoot.yaml"

// Config API identity.
const (
	ConfigAPIVersion = "offshoot.dev/v1alpha1"
	ConfigKind       = "Config"
)

// Config is offshoot.yaml.
type Config struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	App        AppConfig      `json:"app"`
	Branches   BranchConfig   `json:"branches"`
	Database   clone.Settings `json:"database"`
	Events     EventsConfig   `json:"events,omitempty"`
	Review     ReviewConfig   `json:"review,omitempty"`
}

// Review modes: push to the environments repo's branch, or propose a pull request.
const (
	ModeDirect = "direct"
	ModePR     = "pr"
)

// ReviewConfig says which environment changes go through a pull request.
type ReviewConfig struct {
	// Mode for branches not matched below: direct (default) or pr.
	Mode string `json:"mode,omitempty"`
	// PullRequest lists branches (names or path.Match patterns) whose
	// environment changes always go through a pull request, e.g. the
	// long-lived ones, while previews are pushed directly.
	PullRequest []string `json:"pullRequest,omitempty"`
	// AutoMerge asks GitHub to merge each pull request once it can.
	AutoMerge bool `json:"autoMerge,omitempty"`
}

// ReviewMode is the mode for a branch's environment changes.
func (c *Config) ReviewMode(branch string) string {
	for _, p := range c.Review.PullRequest {
		if ok, _ := path.Match(p, branch); ok {
			return ModePR
		}
	}
	if c.Review.Mode == ModePR {
		return ModePR
	}
	return ModeDirect
}

// EventsConfig says which branch events get environments (offshoot serve
// and reconcile; the CLI does what it is told).
type EventsConfig struct {
	// Branches are path.Match patterns of branches that get an environment
	// when pushed or created; empty means every branch.
	Branches []string `json:"branches,omitempty"`
	// PullRequests opts pull requests in: an environment per PR head branch,
	// cut from the PR's base.
	PullRequests PullRequestEvents `json:"pullRequests,omitempty"`
}

// PullRequestEvents configures pull_request events.
type PullRequestEvents struct {
	Enabled bool `json:"enabled,omitempty"`
	// Label, if set, limits environments to PRs carrying it.
	Label string `json:"label,omitempty"`
}

// WantsBranch reports whether push/create events of branch get an
// environment (the root and protected branches always do).
func (c *Config) WantsBranch(branch string) bool {
	if c.IsProtected(branch) || len(c.Events.Branches) == 0 {
		return true
	}
	for _, p := range c.Events.Branches {
		if ok, _ := path.Match(p, branch); ok {
			return true
		}
	}
	return false
}

// AppConfig describes the application every environment runs.
type AppConfig struct {
	// Name of the application, e.g. "shop" (DNS-1123 label).
	Name string `json:"name"`
	// Image repository without tag; the tag is the branch's commit SHA.
	Image string `json:"image"`
	// Port the container listens on.
	Port int `json:"port"`
	// Hostname pattern of the preview URL; {env} is the environment name.
	Hostname string `json:"hostname"`
	// TLS makes the preview URL https (the base Ingress carries tls[0]).
	TLS *bool `json:"tls,omitempty"`
	// NamespacePrefix is prepended to env names; default "<name>-".
	NamespacePrefix string `json:"namespacePrefix,omitempty"`
	// Base is the app base directory, relative to the repo root.
	Base string `json:"base,omitempty"`
}

// BranchConfig says which branch is the root and which are protected.
type BranchConfig struct {
	// Root is the branch whose environment starts with a fresh database.
	Root string `json:"root"`
	// Protected lists branch names or path.Match patterns that offshoot
	// never deletes and Argo CD never prunes.
	Protected []string `json:"protected,omitempty"`
}

// Defaults fills in what offshoot.yaml may leave out.
func (c *Config) Defaults() {
	if c.App.NamespacePrefix == "" && c.App.Name != "" {
		c.App.NamespacePrefix = c.App.Name + "-"
	}
	if c.App.Base == "" {
		c.App.Base = "base/app"
	}
	if c.App.TLS == nil {
		t := true
		c.App.TLS = &t
	}
}

// DefaultConfig is what a config starts from before offshoot.yaml is read.
func DefaultConfig() Config {
	return Config{
		APIVersion: ConfigAPIVersion,
		Kind:       ConfigKind,
		App:        AppConfig{Port: 8080},
		Branches:   BranchConfig{Root: "main"},
		Database:   clone.DefaultSettings(),
	}
}

// ConfigError lists everything wrong with offshoot.yaml.
type ConfigError struct{ Errs []error }

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = "  - " + err.Error()
	}
	return "invalid " + ConfigFile + ":\n" + strings.Join(msgs, "\n")
}

func (e *ConfigError) Unwrap() []error { return e.Errs }

// ParseConfig reads offshoot.yaml strictly: unknown fields are errors, so a
// typo never passes silently, and every invalid value is named.
func ParseConfig(data []byte) (*Config, error) {
	c := DefaultConfig()
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, &ConfigError{Errs: []error{errors.New(cleanYAMLError(err))}}
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var unknownField = regexp.MustCompile(`unknown field "([^"]+)"`)

func cleanYAMLError(err error) string {
	msg := err.Error()
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s: unknown field (check the spelling; see offshoot init's offshoot.yaml for every field)", m[1])
	}
	msg = strings.TrimPrefix(msg, "error unmarshaling JSON: while decoding JSON: ")
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	return msg
}

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	imageRepo    = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
	dnsName      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`)
)

// Validate checks every field and returns a *ConfigError naming each problem.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &clone.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.APIVersion != ConfigAPIVersion {
		add("apiVersion", "must be %s, got %q", ConfigAPIVersion, c.APIVersion)
	}
	if c.Kind != ConfigKind {
		add("kind", "must be %s, got %q", ConfigKind, c.Kind)
	}
	if c.App.Name == "" {
		add("app.name", "is required")
	} else if !dns1123Label.MatchString(c.App.Name) || len(c.App.Name) > 30 {
		add("app.name", "must be a lower-case DNS label of at most 30 characters, got %q", c.App.Name)
	}
	if c.App.Image == "" {
		add("app.image", "is required (the image repository, without a tag)")
	} else if !imageRepo.MatchString(c.App.Image) {
		add("app.image", "must be an image repository without tag or digest, got %q", c.App.Image)
	}
	if c.App.Port < 1 || c.App.Port > 65535 {
		add("app.port", "must be between 1 and 65535, got %d", c.App.Port)
	}
	if !strings.Contains(c.App.Hostname, "{env}") {
		add("app.hostname", "must contain {env}, e.g. {env}.preview.example.com, got %q", c.App.Hostname)
	} else if h := strings.ReplaceAll(c.App.Hostname, "{env}", strings.Repeat("a", MaxEnvNameLength)); !dnsName.MatchString(h) || len(h) > 253 {
		add("app.hostname", "must give a valid DNS name for every environment, got %q", c.App.Hostname)
	}
	if p := c.App.NamespacePrefix; p != "" && (len(p) > MaxNamespacePrefixLength || !regexp.MustCompile(`^[a-z]([-a-z0-9]*)$`).MatchString(p)) {
		add("app.namespacePrefix", "must start with a letter, hold only a-z, 0-9 and '-', and be at most %d characters, got %q", MaxNamespacePrefixLength, p)
	}
	if b := c.App.Base; b != "" && (!validRel(b) || strings.HasPrefix(b, EnvsDir+"/") || b == EnvsDir) {
		add("app.base", "must be a relative directory inside the repo, outside %s/, got %q", EnvsDir, b)
	}
	if err := ValidateBranch(c.Branches.Root); err != nil {
		add("branches.root", "%v", err)
	}
	for i, p := range c.Branches.Protected {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			add(fmt.Sprintf("branches.protected[%d]", i), "must be a branch name or path.Match pattern, got %q", p)
		}
	}
	for i, p := range c.Events.Branches {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			add(fmt.Sprintf("events.branches[%d]", i), "must be a branch name or path.Match pattern, got %q", p)
		}
	}
	if m := c.Review.Mode; m != "" && m != ModeDirect && m != ModePR {
		add("review.mode", "must be direct or pr, got %q", m)
	}
	for i, p := range c.Review.PullRequest {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			add(fmt.Sprintf("review.pullRequest[%d]", i), "must be a branch name or path.Match pattern, got %q", p)
		}
	}
	errs = append(errs, c.Database.Validate("database")...)
	if len(errs) > 0 {
		return &ConfigError{Errs: errs}
	}
	return nil
}

func validRel(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != "." && !strings.HasPrefix(p, "../")
}

// IsProtected reports whether a branch is protected (the root always is).
func (c *Config) IsProtected(branch string) bool {
	if branch == c.Branches.Root {
		return true
	}
	for _, p := range c.Branches.Protected {
		if ok, _ := path.Match(p, branch); ok {
			return true
		}
	}
	return false
}

// Namespace is the namespace of an environment.
func (c *Config) Namespace(env string) string { return c.App.NamespacePrefix + env }

// Host is the preview hostname of an environment.
func (c *Config) Host(env string) string { return strings.ReplaceAll(c.App.Hostname, "{env}", env) }

// URL is the preview URL of an environment.
func (c *Config) URL(env string) string {
	scheme := "https"
	if c.App.TLS != nil && !*c.App.TLS {
		scheme = "http"
	}
	return scheme + "://" + c.Host(env)
}
