package main

import (
	"bytes"
	"fmt"
	"log/slog"

	"go.yaml.in/yaml/v3"

	"llmscope/prom"
	"llmscope/route"
)

// routingConfig reads serve's routes: and routing: config file sections
// into a route.Config; ok is false when the file has no routes.
//
//	routes:
//	  - match: "gpt-4o*"
//	    deployments:
//	      - {name: openai-main, api: openai, url: https://api.openai.com/v1, key_env: OPENAI_API_KEY, weight: 3}
//	      - {name: azure-east, api: azure, url: https://east.openai.azure.com, key_env: AZURE_OPENAI_API_KEY}
//	    fallbacks: [local]
//	routing: {backoff_base: 250ms, max_wait: 30s, failure_threshold: 3}
func routingConfig(routes, tuning *section) (cfg route.Config, ok bool, err error) {
	if routes.YAML == nil {
		if tuning.YAML != nil {
			return cfg, false, fmt.Errorf("config: routing: is set but there are no routes:")
		}
		return cfg, false, nil
	}
	if tuning.YAML != nil {
		dec := yaml.NewDecoder(bytes.NewReader(tuning.YAML))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			return cfg, false, fmt.Errorf("config: routing: %w", err)
		}
		if len(cfg.Routes) > 0 {
			return cfg, false, fmt.Errorf("config: routing: give the routes under routes:, not routing:")
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(routes.YAML))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg.Routes); err != nil {
		return cfg, false, fmt.Errorf("config: routes: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, false, fmt.Errorf("config: routes: %w", err)
	}
	return cfg, true, nil
}

// routeKey resolves a deployment's key_env: the environment, then the .env
// file (as for OPENAI_API_KEY).
func routeKey(name string) string {
	return secret(name)
}

// newRouter builds serve's router from the config file's routes: (nil when
// there are none), its events counted in metrics and logged.
func newRouter(o *serveOptions, m *prom.Metrics, logger *slog.Logger) (*route.Router, error) {
	cfg, ok, err := routingConfig(o.routes, o.routing)
	if err != nil || !ok {
		return nil, err
	}
	log := logger.With("component", "route")
	rt, err := route.New(cfg, route.Options{Getenv: routeKey, OnEvent: func(e route.Event) {
		m.RouteEvent(e.Route, e.Deployment, string(e.Kind))
		switch e.Kind {
		case route.EventCooldown:
			log.Warn("upstream cooling down", "route", e.Route, "upstream", e.Deployment, "reason", string(e.Reason), "until", e.Until)
		case route.EventRecover:
			log.Info("upstream back", "route", e.Route, "upstream", e.Deployment)
		}
	}})
	if err != nil {
		return nil, err
	}
	for _, r := range cfg.Routes {
		names := make([]string, len(r.Deployments))
		for i, d := range r.Deployments {
			names[i] = d.Name
		}
		log.Info("route", "match", r.Match, "deployments", names, "fallbacks", r.Fallbacks)
	}
	return rt, nil
}
