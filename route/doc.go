// Package route is the gateway's routing logic: routes, deployments,
// retries, fallbacks and cooldown. It sends nothing itself; the gateway
// drives it and reports what happened. Standard library only, no global
// state, no logging: problems are returned as errors, decisions reported
// through Options.OnEvent.
//
// # Driving it
//
// For each request the gateway asks the Router for a Plan (Router.Plan with
// the request's model and API shape), then loops:
//
//	plan, err := router.Plan(model, "openai")
//	if err != nil { ... errors.Is(err, route.ErrNoRoute): answer 404/400 ... }
//	defer plan.Close() // frees a half-open probe slot if the request is abandoned
//	for {
//		d, err := plan.Next(ctx) // sleeps the backoff, honouring ctx
//		if err != nil { break }  // ctx ended (or misuse)
//		resp, err := send(d)     // d.URL, d.Key(), d.UpstreamModel(model), d.Timeout
//		if !plan.Report(route.Outcome{Status: ..., Header: ..., Err: err}) {
//			break // relay resp (or an error when there is none)
//		}
//		resp.Body.Close() // dropped: another attempt follows
//	}
//	// plan.Last(), plan.Attempts(): upstream name, attempt count, spans.
//
// Report is called exactly once per attempt, as soon as the gateway knows
// whether the answer can be relayed: at once for a transport failure or an
// error status (before relaying anything, since Report decides whether it
// is relayed or dropped), and for a 2xx answer either before relaying it or
// after (Committed: true, Err: what broke the relay, if anything) so that a
// broken stream counts against the deployment. A streamed answer that breaks
// before its first byte reached the client is reported with Err set and
// Committed false (retryable); once bytes have reached the client the plan
// ends whatever the outcome. When Next fails or Report returns false with no
// response in hand (timeout, connection error), the gateway answers with
// its own error (502/504), as it does today.
//
// # Choice
//
// Routes are tried in config order; the first whose match (an exact name
// or a glob with '*' and '?') fits the model and which has a deployment of
// the request's shape wins. Shapes: openai and azure share the OpenAI body
// shape; anthropic and gemini are their own. Deployments of another shape
// are never part of a plan, fallbacks included.
//
// A plan's order: one of the route's own deployments chosen at random by
// weight among those not cooling down; then the route's other deployments,
// heaviest first; then the fallbacks in order (a fallback route contributes
// its own deployments, chosen the same way; its fallbacks are not
// followed). No deployment is tried twice in one plan, except for its own
// retries. Deployment names are global and health is per deployment.
//
// # Retries
//
// Retryable: 408, 409, 429, 5xx except 501 and 505 (529 included),
// timeouts, connection errors, and a stream that broke before its first
// byte reached the client. Everything else ends the plan at once: other
// 4xx (400, 401, 403, 404, 413, 422...), a success, any failure after bytes
// reached the client, and a cancelled client.
//
// After a retryable failure the plan tries, in this order:
//
//  1. the same deployment again, if it has tries left (route retries,
//     default 2 tries), the failure was not a 429 and the deployment is not
//     cooling down;
//  2. the next untried deployment that is available, without waiting;
//  3. the same deployment again after the wait (a 429 with no other
//     deployment available lands here);
//  4. when every deployment of the plan is cooling, the untried one whose
//     cooldown ends first.
//
// Otherwise the failure is the answer. The wait before retrying the same
// deployment is the server's retry-after-ms (milliseconds, fractional) or
// Retry-After (seconds or an HTTP date); without one, exponential backoff
// with equal jitter: BackoffBase (250ms) doubled per try, at most
// BackoffMax (8s), of which up to half is taken off at random. A server asking
// for more than MaxWait (30s) is not waited for: the plan moves on. Moving
// to another deployment never waits.
//
// # Cooldown
//
// A deployment cools down after FailureThreshold (3) consecutive failures
// (retryable failures and failures after the first byte), or at once on a
// 429, for its route's cooldown (30s; on a 429 the longer of that and the
// server's Retry-After, at most ten cooldowns). While cooling it is skipped
// unless every deployment of the plan is cooling. When the cooldown ends
// the deployment is half-open: one attempt at a time goes through as a
// probe; success closes it, failure cools it again. Answers that are not
// failures (success, non-retryable 4xx) reset the failure count.
package route
