package schema

import "llmscope"

// ModelExpr is the SQL form of (*llmscope.Call).Model, the default group
// key: the requested model, or the answering one when none was requested.
const ModelExpr = `COALESCE(NULLIF(request_model, ''), response_model)`

// GroupExprs are the SQL forms of the group keys of llmscope.Filter.GroupBy,
// the same in both stores (user is quoted: it is a keyword in PostgreSQL).
var GroupExprs = map[string]string{
	llmscope.GroupModel:      ModelExpr,
	llmscope.GroupExperiment: "experiment",
	llmscope.GroupRun:        "run",
	llmscope.GroupUser:       `"user"`,
	llmscope.GroupSession:    "session",
	llmscope.GroupProvider:   "provider",
	llmscope.GroupOperation:  "operation",
	llmscope.GroupUpstream:   "upstream",
	llmscope.GroupKey:        "key_name",
	llmscope.GroupTeam:       "team",
}
