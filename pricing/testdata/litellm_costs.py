"""Writes litellm_costs.json: LiteLLM's own cost of calls on every model of
the embedded table that comes from LiteLLM, for TestCostsMatchLiteLLM.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install litellm==1.110.2 pyyaml
    /tmp/v/bin/python pricing/testdata/litellm_costs.py > pricing/testdata/litellm_costs.json

Each line: [model, provider, service_tier, input, cached, cache_write, output,
input_usd, output_usd], input counting every prompt token.
"""
import json
import os
import sys

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # the price file inside the package, not the network
import yaml  # noqa: E402
from litellm import cost_per_token  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
table = yaml.safe_load(open(os.path.join(here, "..", "prices.yaml")))
litellm_provider = {"openai": "openai", "anthropic": "anthropic", "gcp.gemini": "gemini"}
rows = []
for m in table["models"]:
    if not str(m.get("source", "")).startswith("litellm"):
        continue
    scenarios = [(1000, 0, 0, 500), (10000, 3000, 0, 500)]
    if m["provider"] == "anthropic" or "cache_write" in m:
        scenarios.append((10000, 3000, 2000, 500))
    lc = m.get("long_context")
    if lc:
        a = lc["above"]
        scenarios += [(a, 0, 0, 100), (a + 1, 0, 0, 100), (a + 50000, 40000, 10000, 1000)]
    tiers = [""] + sorted(set(m.get("tiers", {})) | set((lc or {}).get("tiers", {})))
    for tier in tiers:
        for i, c, w, o in scenarios:
            kw = dict(model=m["model"], prompt_tokens=i, completion_tokens=o,
                      custom_llm_provider=litellm_provider[m["provider"]])
            if c:
                kw["cache_read_input_tokens"] = c
            if w:
                kw["cache_creation_input_tokens"] = w
            if tier:
                kw["service_tier"] = tier
            try:
                pi, po = cost_per_token(**kw)
            except Exception as e:  # a model LiteLLM files under another provider
                print("skip", m["model"], e, file=sys.stderr)
                break
            rows.append([m["model"], m["provider"], tier, i, c, w, o, pi, po])
print("[")
print(",\n".join(json.dumps(r) for r in rows))
print("]")
