package main

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"

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
