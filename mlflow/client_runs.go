package mlflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Experiment is an MLflow experiment.
type Experiment struct {
	ID             string
	Name           string
	LifecycleStage string // "active" or "deleted"
}

// Metric is one metric point. Timestamp is in Unix milliseconds.
type Metric struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
}

// Param is a run parameter. MLflow params are immutable: logging the same
// key again with another value fails with INVALID_PARAMETER_VALUE.
type Param struct{ Key, Value string }

// Tag is a run tag; setting it again overwrites it.
type Tag struct{ Key, Value string }

// Run is an MLflow run. StartTime and EndTime are Unix milliseconds (0 when
// unset); Metrics holds the latest value of each metric.
type Run struct {
	ID, Name, ExperimentID, Status string
	StartTime, EndTime             int64
	Params, Tags                   map[string]string
	Metrics                        map[string]float64
}

// Run statuses accepted by UpdateRun.
const (
	StatusRunning  = "RUNNING"
	StatusFinished = "FINISHED"
	StatusFailed   = "FAILED"
	StatusKilled   = "KILLED"
)

// jsonInt64 reads an int64 sent as a number or a string (proto3 JSON).
type jsonInt64 int64

func (n *jsonInt64) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	if string(b) == "null" || len(b) == 0 {
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	*n = jsonInt64(v)
	return err
}

// jsonFloat writes NaN/±Inf as the proto3 JSON strings MLflow accepts and
// reads numbers or those strings back.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64) // accepts NaN, Infinity, -Infinity
		*f = jsonFloat(v)
		return err
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = jsonFloat(v)
	return err
}

type wireKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type wireMetric struct {
	Key       string    `json:"key"`
	Value     jsonFloat `json:"value"`
	Timestamp jsonInt64 `json:"timestamp"`
	Step      jsonInt64 `json:"step"`
}

type wireExperiment struct {
	ID             string `json:"experiment_id"`
	Name           string `json:"name"`
	LifecycleStage string `json:"lifecycle_stage"`
}

type wireRun struct {
	Info struct {
		RunID        string    `json:"run_id"`
		RunUUID      string    `json:"run_uuid"`
		RunName      string    `json:"run_name"`
		ExperimentID string    `json:"experiment_id"`
		Status       string    `json:"status"`
		StartTime    jsonInt64 `json:"start_time"`
		EndTime      jsonInt64 `json:"end_time"`
	} `json:"info"`
	Data struct {
		Metrics []wireMetric `json:"metrics"`
		Params  []wireKV     `json:"params"`
		Tags    []wireKV     `json:"tags"`
	} `json:"data"`
}

func (w *wireRun) run() *Run {
	r := &Run{
		ID: w.Info.RunID, Name: w.Info.RunName, ExperimentID: w.Info.ExperimentID,
		Status: w.Info.Status, StartTime: int64(w.Info.StartTime), EndTime: int64(w.Info.EndTime),
		Params:  make(map[string]string, len(w.Data.Params)),
		Tags:    make(map[string]string, len(w.Data.Tags)),
		Metrics: make(map[string]float64, len(w.Data.Metrics)),
	}
	if r.ID == "" {
		r.ID = w.Info.RunUUID
	}
	for _, p := range w.Data.Params {
		r.Params[p.Key] = p.Value
	}
	for _, t := range w.Data.Tags {
		r.Tags[t.Key] = t.Value
	}
	for _, m := range w.Data.Metrics {
		r.Metrics[m.Key] = float64(m.Value)
	}
	return r
}

// GetExperimentByName returns the experiment called name. When it does not
// exist the error satisfies IsCode(err, "RESOURCE_DOES_NOT_EXIST").
func (c *Client) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	var out struct {
		Experiment wireExperiment `json:"experiment"`
	}
	err := c.call(ctx, "GET", "experiments/get-by-name", url.Values{"experiment_name": {name}}, nil, &out)
	if err != nil {
		return nil, fmt.Errorf("mlflow: get experiment %q: %w", name, err)
	}
	e := out.Experiment
	return &Experiment{ID: e.ID, Name: e.Name, LifecycleStage: e.LifecycleStage}, nil
}

// CreateExperiment creates an experiment and returns its id. An existing
// name fails with IsCode(err, "RESOURCE_ALREADY_EXISTS").
func (c *Client) CreateExperiment(ctx context.Context, name string) (string, error) {
	var out struct {
		ID string `json:"experiment_id"`
	}
	if err := c.call(ctx, "POST", "experiments/create", nil, map[string]string{"name": name}, &out); err != nil {
		return "", fmt.Errorf("mlflow: create experiment %q: %w", name, err)
	}
	return out.ID, nil
}

// EnsureExperiment returns the id of the experiment called name, creating it
// if needed. It is safe against concurrent creators: when the create loses a
// race (RESOURCE_ALREADY_EXISTS) it looks the name up again. A deleted
// experiment with that name is returned as is (MLflow keeps the name taken).
func (c *Client) EnsureExperiment(ctx context.Context, name string) (string, error) {
	e, err := c.GetExperimentByName(ctx, name)
	if err == nil {
		return e.ID, nil
	}
	if !IsCode(err, "RESOURCE_DOES_NOT_EXIST") {
		return "", err
	}
	id, err := c.CreateExperiment(ctx, name)
	if err == nil {
		return id, nil
	}
	if !IsCode(err, "RESOURCE_ALREADY_EXISTS") {
		return "", err
	}
	e, err = c.GetExperimentByName(ctx, name)
	if err != nil {
		return "", err
	}
	return e.ID, nil
}

// CreateRun starts a run (status RUNNING) in experimentID. A zero start
// means now. Tag keys and values are truncated like LogBatch does.
func (c *Client) CreateRun(ctx context.Context, experimentID, runName string, start time.Time, tags map[string]string) (*Run, error) {
	if start.IsZero() {
		start = time.Now()
	}
	in := struct {
		ExperimentID string   `json:"experiment_id"`
		RunName      string   `json:"run_name,omitempty"`
		StartTime    int64    `json:"start_time"`
		Tags         []wireKV `json:"tags,omitempty"`
	}{ExperimentID: experimentID, RunName: runName, StartTime: start.UnixMilli()}
	for k, v := range tags {
		in.Tags = append(in.Tags, wireKV{truncate(k, MaxKeyLength), truncate(v, MaxTagValueLength)})
	}
	var out struct {
		Run wireRun `json:"run"`
	}
	if err := c.call(ctx, "POST", "runs/create", nil, in, &out); err != nil {
		return nil, fmt.Errorf("mlflow: create run: %w", err)
	}
	return out.Run.run(), nil
}

// GetRun returns a run with its params, tags and latest metrics.
func (c *Client) GetRun(ctx context.Context, runID string) (*Run, error) {
	var out struct {
		Run wireRun `json:"run"`
	}
	if err := c.call(ctx, "GET", "runs/get", url.Values{"run_id": {runID}}, nil, &out); err != nil {
		return nil, fmt.Errorf("mlflow: get run: %w", err)
	}
	return out.Run.run(), nil
}

// UpdateRun sets a run's status (StatusRunning, StatusFinished, StatusFailed
// or StatusKilled) and, unless end is zero, its end time.
func (c *Client) UpdateRun(ctx context.Context, runID, status string, end time.Time) error {
	switch status {
	case StatusRunning, StatusFinished, StatusFailed, StatusKilled:
	default:
		return fmt.Errorf("mlflow: update run: invalid status %q", status)
	}
	in := struct {
		RunID   string `json:"run_id"`
		Status  string `json:"status"`
		EndTime *int64 `json:"end_time,omitempty"`
	}{RunID: runID, Status: status}
	if !end.IsZero() {
		ms := end.UnixMilli()
		in.EndTime = &ms
	}
	if err := c.call(ctx, "POST", "runs/update", nil, in, nil); err != nil {
		return fmt.Errorf("mlflow: update run: %w", err)
	}
	return nil
}

// SearchRuns returns all active runs of the experiments matching filter
// (MLflow search syntax, e.g. "tags.llmscope.run = 'x'"; empty = all),
// following next_page_token until the last page.
func (c *Client) SearchRuns(ctx context.Context, experimentIDs []string, filter string) ([]Run, error) {
	var runs []Run
	token := ""
	for {
		in := map[string]any{"experiment_ids": experimentIDs, "max_results": 1000, "run_view_type": "ACTIVE_ONLY"}
		if filter != "" {
			in["filter"] = filter
		}
		if token != "" {
			in["page_token"] = token
		}
		var out struct {
			Runs  []wireRun `json:"runs"`
			Token string    `json:"next_page_token"`
		}
		if err := c.call(ctx, "POST", "runs/search", nil, in, &out); err != nil {
			return nil, fmt.Errorf("mlflow: search runs: %w", err)
		}
		for i := range out.Runs {
			runs = append(runs, *out.Runs[i].run())
		}
		if out.Token == "" || out.Token == token {
			return runs, nil
		}
		token = out.Token
	}
}

// RunTag is the tag llmscope gives each named run it makes: its name.
// RunKeyTag holds a hash of the name, which MLflow's search syntax can
// match whatever characters the name holds (it has no escape for quotes
// or backslashes).
const (
	RunTag    = "llmscope.run"
	RunKeyTag = "llmscope.run_key"
)

// RunKey returns the RunKeyTag value of a run name.
func RunKey(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

// FindRun returns the active run of the experiment that llmscope made for
// the named run, or nil when there is none.
func (c *Client) FindRun(ctx context.Context, experimentID, name string) (*Run, error) {
	filter := "tags.`" + RunKeyTag + "` = '" + RunKey(name) + "'"
	if !strings.ContainsAny(name, `'"\`) {
		// Runs made before the key tag existed are found by name.
		filter = "tags.`" + RunTag + "` = '" + name + "'"
	}
	runs, err := c.SearchRuns(ctx, []string{experimentID}, filter)
	if err != nil {
		return nil, err
	}
	for i := range runs {
		if runs[i].Tags[RunTag] == name {
			return &runs[i], nil
		}
	}
	return nil, nil
}

// SetTag sets one run tag (key and value truncated like LogBatch does).
func (c *Client) SetTag(ctx context.Context, runID, key, value string) error {
	in := map[string]string{"run_id": runID, "key": truncate(key, MaxKeyLength), "value": truncate(value, MaxTagValueLength)}
	if err := c.call(ctx, "POST", "runs/set-tag", nil, in, nil); err != nil {
		return fmt.Errorf("mlflow: set tag: %w", err)
	}
	return nil
}

// MetricHistory returns every logged point of one metric of a run, in the
// server's order (by step, timestamp), following page tokens.
func (c *Client) MetricHistory(ctx context.Context, runID, key string) ([]Metric, error) {
	var ms []Metric
	token := ""
	for {
		q := url.Values{"run_id": {runID}, "metric_key": {key}, "max_results": {"25000"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var out struct {
			Metrics []wireMetric `json:"metrics"`
			Token   string       `json:"next_page_token"`
		}
		if err := c.call(ctx, "GET", "metrics/get-history", q, nil, &out); err != nil {
			return nil, fmt.Errorf("mlflow: metric history: %w", err)
		}
		for _, m := range out.Metrics {
			ms = append(ms, Metric{Key: m.Key, Value: float64(m.Value), Timestamp: int64(m.Timestamp), Step: int64(m.Step)})
		}
		if out.Token == "" || out.Token == token {
			return ms, nil
		}
		if len(out.Metrics) == 0 {
			return nil, errors.New("mlflow: metric history: empty page with a next page token")
		}
		token = out.Token
	}
}
