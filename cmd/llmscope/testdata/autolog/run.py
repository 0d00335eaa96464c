"""Side-by-side driver for cmd/llmscope's TestAutologSideBySide.

Makes the same OpenAI calls with the Python `openai` client one of two ways
and prints ONE JSON document on stdout describing the MLflow traces they
produced, read back from the MLflow server:

  --side autolog   mlflow.openai.autolog(), client straight to the simulator;
                   traces land in experiment "autolog".
  --side llmscope  no autolog, client through `llmscope serve`, which exports
                   the traces itself (experiment "llmscope").

    python run.py --side autolog --sim http://127.0.0.1:P --gateway http://127.0.0.1:Q \
        --mlflow http://127.0.0.1:R

Every diagnostic goes to stderr; stdout holds only the JSON document.
"""

import argparse
import json
import os
import sys
import time
import traceback
import urllib.request

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow  # noqa: E402
import openai  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
RUN_NAME = "sidebyside-run"
USER, SESSION = "ann", "s1"
TAG_KEY, TAG_VALUE = "suite", "sidebyside"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]

# What each call sends (the same on both sides). kind -> (api, kwargs).
CALLS = [
    ("chat", "chat", dict(
        model=CHAT_MODEL, temperature=0.2, max_tokens=64,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour of the sea."},
        ])),
    ("chat_stream", "chat", dict(
        model=CHAT_MODEL, temperature=0.2, max_tokens=64, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Describe a lighthouse at night."}])),
    ("tools", "chat", dict(
        model=CHAT_MODEL, tools=TOOLS, tool_choice="auto",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}])),
    ("embeddings", "embeddings", dict(
        model=EMBED_MODEL, input=["The quick brown fox", "jumps over the lazy dog"], dimensions=8)),
    ("responses", "responses", dict(
        model=CHAT_MODEL, instructions="Answer in one sentence.",
        input="Why is the sky blue?", max_output_tokens=64)),
    ("responses_stream", "responses", dict(
        model=CHAT_MODEL, instructions="Answer in one sentence.",
        input="Why do leaves change colour?", stream=True, max_output_tokens=64)),
    ("error", "chat", dict(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "This call is rate limited."}],
        extra_headers={"X-Sim-Fault": "status=429"})),
    ("run", "chat", dict(
        model=CHAT_MODEL, temperature=0.5,
        messages=[{"role": "user", "content": "A call inside a run."}])),
]


def log(*a):
    print("run.py:", *a, file=sys.stderr, flush=True)


def plain(obj):
    """A JSON-able copy of an openai/pydantic object."""
    if obj is None:
        return None
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


def decode(v):
    """JSON-decodes a stored attribute value when it is JSON, else keeps it."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def sent_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k != "extra_headers"}


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def wait_for(what, fn, timeout=60.0, interval=0.25):
    """Polls fn until it returns something truthy; raises on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # not there yet
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what} (last error: {last!r})")
        time.sleep(interval)


class Caller:
    """Makes one call and returns (what the client saw, trace locator)."""

    def __init__(self, side, client, gateway):
        self.side, self.client, self.gateway = side, client, gateway

    def create(self, api, kwargs):
        if api == "chat":
            res = self.client.chat.completions
        elif api == "embeddings":
            res = self.client.embeddings
        else:
            res = self.client.responses
        if self.side == "llmscope":
            # The raw response carries X-Llmscope-Call-Id; the request is the same.
            raw = res.with_raw_response.create(**kwargs)
            return raw.parse(), raw.headers.get("X-Llmscope-Call-Id")
        return res.create(**kwargs), None

    def call(self, kind, api, kwargs):
        seen = {"ok": True}
        call_id = None
        try:
            out, call_id = self.create(api, kwargs)
            if kwargs.get("stream"):
                chunks = []
                for ch in out:
                    chunks.append(plain(ch))
                seen["chunks"] = len(chunks)
                seen["chunk_types"] = sorted({c.get("object") or c.get("type") or "" for c in chunks})
                if api == "chat":
                    seen["content"] = "".join(
                        (c["choices"][0]["delta"].get("content") or "")
                        for c in chunks if c.get("choices"))
                    seen["id"] = chunks[-1].get("id") if chunks else None
                    seen["usage"] = next((c["usage"] for c in reversed(chunks) if c.get("usage")), None)
                else:
                    done = [c for c in chunks if c.get("type") == "response.completed"]
                    if done:
                        seen["response"] = done[-1]["response"]
                        seen["content"] = text_of_response(done[-1]["response"])
                        seen["id"] = done[-1]["response"].get("id")
            else:
                body = plain(out)
                seen["body"] = body
                if api == "chat":
                    msg = body["choices"][0]["message"]
                    seen["content"] = msg.get("content")
                    seen["tool_calls"] = msg.get("tool_calls")
                    seen["id"] = body.get("id")
                elif api == "responses":
                    seen["content"] = text_of_response(body)
                    seen["id"] = body.get("id")
                else:
                    seen["id"] = None
        except openai.APIStatusError as e:
            seen = {"ok": False, "status": e.status_code, "error_class": type(e).__name__,
                    "message": str(e), "body": e.body}
            call_id = e.response.headers.get("X-Llmscope-Call-Id")
        return seen, call_id


def text_of_response(resp):
    parts = []
    for item in resp.get("output") or []:
        if item.get("type") == "message":
            for c in item.get("content") or []:
                if c.get("type") == "output_text":
                    parts.append(c.get("text") or "")
    return "".join(parts)


def span_doc(span):
    d = span.to_dict()
    raw = d.get("attributes") or {}
    status = span.status
    return {
        "name": span.name,
        "span_type": span.span_type,
        "span_type_raw": raw.get("mlflow.spanType"),
        "parent_id": span.parent_id,
        "status_code": status.status_code.value if hasattr(status.status_code, "value") else str(status.status_code),
        "status_description": status.description,
        "attributes": {k: decode(v) for k, v in raw.items()},
        "inputs": span.inputs,
        "outputs": span.outputs,
        "events": [
            {"name": ev.name, "attributes": {k: decode(v) for k, v in (ev.attributes or {}).items()}}
            for ev in span.events
        ],
    }


def trace_doc(trace):
    info = trace.info
    root = None
    spans = trace.data.spans
    for s in spans:
        if s.parent_id is None:
            root = s
    try:
        token_usage = info.token_usage
    except Exception:
        token_usage = None
    state = info.state
    return {
        "info": {
            "trace_id": info.trace_id,
            "state": state.value if hasattr(state, "value") else str(state),
            "request_preview": info.request_preview,
            "response_preview": info.response_preview,
            "trace_metadata": dict(info.trace_metadata or {}),
            "tags": dict(info.tags or {}),
            "token_usage": token_usage,
            "execution_duration_ms": info.execution_duration,
        },
        "span_count": len(spans),
        "span_names": [s.name for s in spans],
        "root": span_doc(root) if root is not None else None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", required=True, choices=["autolog", "llmscope"])
    ap.add_argument("--sim", required=True, help="simulator root URL (no /v1)")
    ap.add_argument("--gateway", default="", help="llmscope serve root URL (no /v1)")
    ap.add_argument("--mlflow", required=True)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    # MLflow prints links ("View run ...") on stdout: keep stdout for the
    # document alone.
    out, sys.stdout = sys.stdout, sys.stderr

    mlflow.set_tracking_uri(args.mlflow)
    mc = MlflowClient()
    side = args.side
    doc = {"side": side, "versions": {"mlflow": mlflow.__version__, "openai": openai.__version__},
           "calls": {}, "sent": {}, "filters": [], "errors": []}

    if side == "autolog":
        exp = mlflow.set_experiment("autolog")
        mlflow.openai.autolog()
        client = openai.OpenAI(base_url=args.sim.rstrip("/") + "/v1", api_key="sk-test", max_retries=0)
    else:
        client = openai.OpenAI(
            base_url=args.gateway.rstrip("/") + "/v1", api_key="sk-test", max_retries=0,
            default_headers={
                "X-Llmscope-Experiment": "llmscope",
                "X-Llmscope-User": USER,
                "X-Llmscope-Session": SESSION,
                "X-Llmscope-Tags": f"{TAG_KEY}={TAG_VALUE}",
            })
    caller = Caller(side, client, args.gateway.rstrip("/"))

    locators = {}  # kind -> MLflow trace id
    for kind, api, kwargs in CALLS:
        kwargs = dict(kwargs)
        doc["sent"][kind] = sent_kwargs(kwargs)
        if kind == "run":
            if side == "autolog":
                with mlflow.start_run(run_name=RUN_NAME) as run:
                    seen, _ = caller.call(kind, api, kwargs)
                doc["run_id"] = run.info.run_id
            else:
                kwargs["extra_headers"] = {"X-Llmscope-Run": RUN_NAME}
                seen, call_id = caller.call(kind, api, kwargs)
        else:
            seen, call_id = caller.call(kind, api, kwargs)
        if side == "autolog":
            locators[kind] = mlflow.get_last_active_trace_id()
        else:
            seen["call_id"] = call_id
            locators[kind] = call_id
        doc["calls"][kind] = {"client": seen}
        log(side, kind, "ok" if seen.get("ok") else f"error {seen.get('status')}")

    if side == "autolog":
        mlflow.flush_trace_async_logging(terminate=False)
        exp_id = exp.experiment_id
    else:
        # The gateway's store and exporter are asynchronous: find each call's
        # trace id through its API, then wait for MLflow to have the trace.
        for kind, call_id in list(locators.items()):
            if not call_id:
                doc["errors"].append(f"{kind}: no X-Llmscope-Call-Id header")
                locators[kind] = None
                continue
            try:
                c = wait_for(f"call {call_id} in the store",
                             lambda: http_json(f"{caller.gateway}/api/calls/{call_id}"), args.timeout)
                doc["calls"][kind]["store_call"] = c
                locators[kind] = "tr-" + c["trace_id"] if c.get("trace_id") else None
            except Exception as e:
                doc["errors"].append(f"{kind}: {e}")
                locators[kind] = None
        exp_obj = wait_for("experiment llmscope", lambda: mc.get_experiment_by_name("llmscope"), args.timeout)
        exp_id = exp_obj.experiment_id
        try:
            runs = wait_for(f"run {RUN_NAME}", lambda: mc.search_runs(
                [exp_id], filter_string=f"attributes.run_name = '{RUN_NAME}'"), args.timeout)
            doc["run_id"] = runs[0].info.run_id
            doc["run_tags"] = dict(runs[0].data.tags)
        except Exception as e:
            doc["errors"].append(f"run: {e}")
    doc["experiment_id"] = exp_id

    for kind, tid in locators.items():
        entry = doc["calls"][kind]
        entry["trace_id"] = tid
        if not tid:
            continue

        def fetch(tid=tid):
            t = mc.get_trace(tid)
            return t if t is not None and t.data.spans else None

        try:
            entry.update(trace_doc(wait_for(f"trace {tid} ({kind})", fetch, args.timeout)))
        except Exception as e:
            doc["errors"].append(f"{kind}: {e}")
            log(traceback.format_exc())

    want = len([t for t in locators.values() if t])
    try:
        wait_for(f"{want} traces in experiment {exp_id}",
                 lambda: len(mc.search_traces([exp_id], max_results=200, include_spans=False)) >= want,
                 args.timeout)
    except Exception as e:
        doc["errors"].append(str(e))

    run_id = doc.get("run_id", "")
    filters = [
        ("span_type_chat", "span.type = 'CHAT_MODEL'"),
        # A JSON-quoted span type is stored with its quotes: this must match nothing.
        ("span_type_chat_quoted", "span.type = '\"CHAT_MODEL\"'"),
        ("span_type_embedding", "span.type = 'EMBEDDING'"),
        ("span_name_completions", "span.name = 'Completions'"),
        ("span_name_responses", "span.name = 'Responses'"),
        ("span_name_embeddings", "span.name = 'Embeddings'"),
        ("trace_name_completions", "trace.name = 'Completions'"),
        ("trace_name_responses", "trace.name = 'Responses'"),
        ("trace_name_embeddings", "trace.name = 'Embeddings'"),
        ("status_error", "trace.status = 'ERROR'"),
        ("status_ok", "trace.status = 'OK'"),
        ("metadata_source_run", f"metadata.`mlflow.sourceRun` = '{run_id}'"),
        ("trace_run_id", f"trace.run_id = '{run_id}'"),
        ("metadata_user", f"metadata.`mlflow.trace.user` = '{USER}'"),
        ("metadata_session", f"metadata.`mlflow.trace.session` = '{SESSION}'"),
        ("tag_suite", f"tags.`{TAG_KEY}` = '{TAG_VALUE}'"),
        ("tag_llmscope_run", f"tags.`llmscope.run` = '{RUN_NAME}'"),
        ("span_model", "span.attributes.`mlflow.llm.model` = 'gpt-4o-mini'"),
        ("all", ""),
    ]
    for name, f in filters:
        row = {"name": name, "filter": f}
        try:
            row["count"] = len(mc.search_traces([exp_id], filter_string=f or None,
                                                max_results=200, include_spans=False))
        except Exception as e:
            row["count"], row["error"] = None, f"{type(e).__name__}: {e}"
        doc["filters"].append(row)
    row = {"name": "search_run_id", "filter": f"search_traces(run_id={run_id!r})"}
    try:
        # MLflow 3.17.2: run_id needs `locations`; with experiment_ids it raises
        # TypeError ("argument of type 'NoneType' is not iterable").
        row["count"] = len(mc.search_traces(locations=[exp_id], run_id=run_id, max_results=200,
                                            include_spans=False)) if run_id else 0
    except Exception as e:
        row["count"], row["error"] = None, f"{type(e).__name__}: {e}"
    doc["filters"].append(row)

    json.dump(doc, out, default=str)
    out.write("\n")
    out.flush()


if __name__ == "__main__":
    main()
