package otlp

import (
	"maps"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		endpoint string
		headers  map[string]string
	}{
		{name: "nothing"},
		{
			name:     "base endpoint",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			endpoint: "http://collector:4318/v1/traces",
		},
		{
			name:     "base endpoint with slash",
			env:      map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": " http://collector:4318/ "},
			endpoint: "http://collector:4318/v1/traces",
		},
		{
			name: "traces endpoint wins and is used as is",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://collector:4318",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://mlflow:5000/custom/path",
			},
			endpoint: "http://mlflow:5000/custom/path",
		},
		{
			name: "headers decoded and merged",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_HEADERS":        "Authorization=Bearer%20abc+def==, x-a = 1 ,bad, =novalue,x-b=%zz",
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-a=2,x-mlflow-experiment-id=12,x-empty=",
			},
			headers: map[string]string{
				"Authorization":          "Bearer abc+def==",
				"x-a":                    "2",
				"x-mlflow-experiment-id": "12",
				"x-empty":                "",
			},
		},
		{
			name:    "traces headers only",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=v%2Cw"},
			headers: map[string]string{"k": "v,w"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, headers := ConfigFromEnv(func(k string) string { return tc.env[k] })
			if endpoint != tc.endpoint {
				t.Errorf("endpoint = %q, want %q", endpoint, tc.endpoint)
			}
			if !maps.Equal(headers, tc.headers) {
				t.Errorf("headers = %v, want %v", headers, tc.headers)
			}
			if tc.headers == nil && headers != nil {
				t.Errorf("headers = %v, want nil", headers)
			}
		})
	}
}
