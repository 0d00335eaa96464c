package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Trace endpoints, as MLflow 3.17's server routes them and its Python
// client (mlflow/store/tracking/rest_store.py) calls them:
//
//   - Ingest: POST /v1/traces, OTLP/HTTP protobuf (Content-Type
//     application/x-protobuf; application/json is accepted too), headers
//     x-mlflow-experiment-id (required: without it FastAPI answers 422
//     {"detail":[…]}) and x-mlflow-run-id (optional; links the trace to
//     the run, silently ignored when the run does not exist). Success is
//     200 with an empty ExportTraceServiceResponse body. The MLflow trace id
//     is "tr-" + the 32 lowercase hex digits of the OTLP trace id. Posting a
//     span again (same trace id and span id) replaces it; other span ids
//     are added to the same trace and the trace totals are re-aggregated.
//   - Search: POST /api/3.0/mlflow/traces/search {locations:[{type:
//     "MLFLOW_EXPERIMENT", mlflow_experiment:{experiment_id}}], filter,
//     max_results, order_by, page_token} → {traces:[TraceInfoV3…],
//     next_page_token}.
//   - Get with spans: GET /api/3.0/mlflow/traces/get?trace_id=… →
//     {trace:{trace_info, spans:[…]}}. (GET /api/3.0/mlflow/traces/{id}
//     returns {trace:{trace_info}} only.)
//
// A TraceInfoV3 JSON object has trace_id, trace_location, request_time
// (RFC 3339), execution_duration ("0.120s"), state ("OK", "ERROR",
// "IN_PROGRESS"), request_preview, response_preview, trace_metadata and
// tags. The server fills trace_metadata from the spans:
// "mlflow.trace.tokenUsage" (JSON string {input_tokens, output_tokens,
// total_tokens}, summed over the spans' mlflow.chat.tokenUsage),
// "mlflow.trace.cost" (JSON string {input_cost, output_cost, total_cost}),
// "mlflow.trace.session" (span attribute session.id or
// gen_ai.conversation.id) and "mlflow.trace.user" (user.id). Root-span
// attributes "mlflow.traceTag.<k>" become trace tags <k> (the tag
// "mlflow.traceName" becomes the trace's name). x-mlflow-run-id links at
// most 100 traces per request (more are not linked at all) and puts no
// "mlflow.sourceRun" in the trace metadata: StartTrace does that.

// SearchTraces returns the trace infos (TraceInfoV3 JSON objects, see
// above) of the experiments that match filter (MLflow trace search syntax,
// e.g. "trace.run_id = 'abc'", "tags.`llmscope.run` = 'x'"; empty =
// all), newest first, following page tokens until max traces are read
// (max <= 0 means 100).
func (c *Client) SearchTraces(ctx context.Context, experimentIDs []string, filter string, max int) ([]json.RawMessage, error) {
	if max <= 0 {
		max = 100
	}
	type location struct {
		Type       string            `json:"type"`
		Experiment map[string]string `json:"mlflow_experiment"`
	}
	locs := make([]location, 0, len(experimentIDs))
	for _, id := range experimentIDs {
		locs = append(locs, location{"MLFLOW_EXPERIMENT", map[string]string{"experiment_id": id}})
	}
	var traces []json.RawMessage
	token := ""
	for len(traces) < max {
		in := map[string]any{
			"locations":   locs,
			"max_results": min(max-len(traces), 500),
			"order_by":    []string{"timestamp_ms DESC"},
		}
		if filter != "" {
			in["filter"] = filter
		}
		if token != "" {
			in["page_token"] = token
		}
		var out struct {
			Traces []json.RawMessage `json:"traces"`
			Token  string            `json:"next_page_token"`
		}
		if err := c.call(ctx, "POST", "/api/3.0/mlflow/traces/search", nil, in, &out); err != nil {
			return nil, fmt.Errorf("mlflow: search traces: %w", err)
		}
		traces = append(traces, out.Traces...)
		if out.Token == "" || out.Token == token || len(out.Traces) == 0 {
			break
		}
		token = out.Token
	}
	if len(traces) > max {
		traces = traces[:max]
	}
	return traces, nil
}

// GetTrace returns one trace with its spans: the JSON object
// {"trace_info": {…}, "spans": [{trace_id, span_id (base64), name,
// start_time_unix_nano, end_time_unix_nano, attributes: [{key, value:
// AnyValue}], status}…]}. traceID is MLflow's id ("tr-<32 hex>"). Span
// attributes come back decoded: mlflow.spanType is a string_value and JSON
// objects such as mlflow.chat.tokenUsage are kvlist_values. A missing trace
// gives IsCode(err, "RESOURCE_DOES_NOT_EXIST").
func (c *Client) GetTrace(ctx context.Context, traceID string) (json.RawMessage, error) {
	var out struct {
		Trace json.RawMessage `json:"trace"`
	}
	err := c.call(ctx, "GET", "/api/3.0/mlflow/traces/get", url.Values{"trace_id": {traceID}}, nil, &out)
	if err != nil {
		return nil, fmt.Errorf("mlflow: get trace: %w", err)
	}
	return out.Trace, nil
}

// ExportTraces posts an OTLP/HTTP protobuf ExportTraceServiceRequest to the
// server's /v1/traces endpoint into experimentID, linking the traces to
// runID when it is not empty. It retries like every other call; errors are
// APIErrors whose Message holds the server's {"detail": …} text.
func (c *Client) ExportTraces(ctx context.Context, experimentID, runID string, protobufBody []byte) error {
	h := http.Header{}
	h.Set("x-mlflow-experiment-id", experimentID)
	if runID != "" {
		h.Set("x-mlflow-run-id", runID)
	}
	_, err := c.send(ctx, request{
		method: "POST", path: "/v1/traces", body: protobufBody,
		contentType: "application/x-protobuf", header: h,
	})
	if err != nil {
		return fmt.Errorf("mlflow: export traces: %w", err)
	}
	return nil
}

// TraceInfo is what StartTrace records of a trace whose spans arrive over
// OTLP: its identity, timing and state, and the metadata and tags only this
// call can set (mlflow.sourceRun is not set from spans).
type TraceInfo struct {
	TraceID      string // MLflow's id, "tr-<32 hex>"
	ExperimentID string
	RequestTime  time.Time
	Duration     time.Duration
	State        string // "OK" or "ERROR"
	Metadata     map[string]string
	Tags         map[string]string
}

// StartTrace records info with StartTraceV3 (POST /api/3.0/mlflow/traces),
// which MLflow's Python client calls when a trace ends. For a trace that
// already exists (its spans came first) the server merges: it sets the
// trace's timing and state from info and adds the metadata and tags.
// Sending the same info again changes nothing.
func (c *Client) StartTrace(ctx context.Context, info TraceInfo) error {
	ti := map[string]any{
		"trace_id": info.TraceID,
		"trace_location": map[string]any{
			"type":              "MLFLOW_EXPERIMENT",
			"mlflow_experiment": map[string]string{"experiment_id": info.ExperimentID},
		},
		"request_time":       info.RequestTime.UTC().Format(time.RFC3339Nano),
		"execution_duration": strconv.FormatFloat(info.Duration.Seconds(), 'f', -1, 64) + "s",
		"state":              info.State,
	}
	if len(info.Metadata) > 0 {
		ti["trace_metadata"] = info.Metadata
	}
	if len(info.Tags) > 0 {
		ti["tags"] = info.Tags
	}
	in := map[string]any{"trace": map[string]any{"trace_info": ti}}
	if err := c.call(ctx, "POST", "/api/3.0/mlflow/traces", nil, in, nil); err != nil {
		return fmt.Errorf("mlflow: start trace %s: %w", info.TraceID, err)
	}
	return nil
}
