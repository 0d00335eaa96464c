package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// MLflow's runs/log-batch limits (mlflow/utils/validation.py).
const (
	MaxMetricsPerBatch   = 1000
	MaxParamsPerBatch    = 100
	MaxTagsPerBatch      = 100
	MaxEntitiesPerBatch  = 1000
	MaxBatchBodyBytes    = 1_000_000
	MaxKeyLength         = 250
	MaxParamValueLength  = 6000
	MaxTagValueLength    = 8000
	batchBodySafetyBytes = 1024
)

// truncate shortens s to at most n characters (Unicode code points, as
// MLflow counts them), never splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

type batchItem struct {
	kind int // 0 param, 1 tag, 2 metric
	json []byte
}

// LogBatch logs metrics, params and tags to a run, split into as many
// runs/log-batch requests as MLflow's limits need: at most 1000 metrics,
// 100 params, 100 tags and 1000 items in all per request, and a body under
// 1 MB. Before sending, keys are truncated to 250 characters, param values
// to 6000 and tag values to 8000 (MLflow rejects longer ones); truncation is
// deterministic, so re-logging the same long param value does not conflict.
// A zero metric Timestamp is sent as 0 (callers set it); NaN and ±Inf are
// sent as MLflow's "NaN"/"Infinity" strings.
//
// Requests are sent in order and the call stops at the first failure. Like
// MLflow's endpoint itself this is not atomic: an error may leave earlier
// parts logged. Re-logging is safe for tags, for identical params and for
// metrics (MLflow de-duplicates identical points); a param logged again
// with another value fails with INVALID_PARAMETER_VALUE.
func (c *Client) LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	bodies, err := splitBatch(runID, metrics, params, tags)
	if err != nil {
		return fmt.Errorf("mlflow: log batch: %w", err)
	}
	for i, b := range bodies {
		if err := c.call(ctx, "POST", "runs/log-batch", nil, json.RawMessage(b), nil); err != nil {
			if len(bodies) > 1 {
				return fmt.Errorf("mlflow: log batch (part %d of %d): %w", i+1, len(bodies), err)
			}
			return fmt.Errorf("mlflow: log batch: %w", err)
		}
	}
	return nil
}

// splitBatch encodes the items and packs them into request bodies that
// respect every limit. Each body takes params and tags first (up to their
// own limits), then fills up with metrics.
func splitBatch(runID string, metrics []Metric, params []Param, tags []Tag) ([][]byte, error) {
	var ps, ts, ms []batchItem
	for _, p := range params {
		b, err := json.Marshal(wireKV{truncate(p.Key, MaxKeyLength), truncate(p.Value, MaxParamValueLength)})
		if err != nil {
			return nil, err
		}
		ps = append(ps, batchItem{0, b})
	}
	for _, t := range tags {
		b, err := json.Marshal(wireKV{truncate(t.Key, MaxKeyLength), truncate(t.Value, MaxTagValueLength)})
		if err != nil {
			return nil, err
		}
		ts = append(ts, batchItem{1, b})
	}
	for _, m := range metrics {
		b, err := json.Marshal(wireMetric{truncate(m.Key, MaxKeyLength), jsonFloat(m.Value), jsonInt64(m.Timestamp), jsonInt64(m.Step)})
		if err != nil {
			return nil, err
		}
		ms = append(ms, batchItem{2, b})
	}
	idJSON, _ := json.Marshal(runID)
	// {"run_id":ID,"metrics":[],"params":[],"tags":[]}
	overhead := len(`{"run_id":,"metrics":[],"params":[],"tags":[]}`) + len(idJSON)
	budget := MaxBatchBodyBytes - batchBodySafetyBytes

	var bodies [][]byte
	for len(ps)+len(ts)+len(ms) > 0 {
		size, total := overhead, 0
		var chunk [3][][]byte
		take := func(items *[]batchItem, limit int) {
			n := 0
			for len(*items) > 0 && n < limit && total < MaxEntitiesPerBatch {
				it := (*items)[0]
				add := len(it.json) + 1 // + comma
				if size+add > budget && total > 0 {
					return
				}
				chunk[it.kind] = append(chunk[it.kind], it.json)
				size += add
				n++
				total++
				*items = (*items)[1:]
			}
		}
		take(&ps, MaxParamsPerBatch)
		take(&ts, MaxTagsPerBatch)
		take(&ms, MaxMetricsPerBatch)
		var buf bytes.Buffer
		buf.Grow(size)
		buf.WriteString(`{"run_id":`)
		buf.Write(idJSON)
		for i, name := range [3]string{"params", "tags", "metrics"} {
			buf.WriteString(`,"` + name + `":[`)
			buf.Write(bytes.Join(chunk[i], []byte{','}))
			buf.WriteByte(']')
		}
		buf.WriteByte('}')
		bodies = append(bodies, buf.Bytes())
	}
	return bodies, nil
}
