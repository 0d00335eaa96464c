-- Every index costs the writer on each insert (about a quarter of its CPU
-- for these two), and neither served a query: the model filter matches
-- request_model OR response_model, which this index cannot answer, and one
-- experiment usually holds nearly every call. Both filters now scan the
-- time range through calls_start like the others.
DROP INDEX IF EXISTS calls_request_model_start;
DROP INDEX IF EXISTS calls_experiment_start;
