// Package budget enforces keys, budgets and rate limits (issue 20): the
// decisions, pure and fast, without storage or HTTP. The gateway calls it;
// the stores implement its two shared-state interfaces, Ledger (budgets)
// and Counter (rate limits); MemLedger and MemCounter are the in-memory
// ones (one gateway, tests).
//
// # The gateway's calls
//
// For each request, before forwarding:
//
//  1. Allowed(key, model, now): revoked, expired and model-not-allowed keys
//     are refused at once (401/403).
//  2. Limiter.Take(ctx, RateSubjects{key, user, model}, estTokens): a
//     RateRefusal is a 429 with Retry-After; RateStatus.Set writes the
//     x-ratelimit-* headers on every answer, the 429 included.
//  3. Enforcer.Reserve(ctx, Subjects{key, user, team, experiment},
//     WorstCase(inputTokens, maxOutput, price)): a Refusal is a 429 with
//     error type "budget_exceeded" and its figures.
//
// When the call ends: Enforcer.Settle(r, recordedCostUSD) (UnknownCost when
// the price or usage is unknown) and Limiter.Settle(ctx, ticket,
// actualTokens). For a call that never went upstream (a budget refusal
// after Take, an error before forwarding): Enforcer.Release(r) and
// Limiter.Settle(ctx, ticket, 0) (its request stays counted: it was one).
// Enforcer.Run runs beside the gateway; Settle and Release never block on
// the ledger. The whole check costs about a microsecond on a warm key (see
// BenchmarkCheck); Allowed, Take and Reserve allocate only to refuse, bar
// one small Reservation.
//
// Retries: the openai Python and Go clients retry a 429 (twice by default)
// unless the answer carries "x-should-retry: false"; they wait Retry-After
// (or Retry-After-Ms) when it is short (Python: ≤ 60 s, else its own
// backoff; openai-go v3: ≤ 2 min, and a longer one stops the retries). A
// budget refusal lasts until the period ends, so the gateway should send
// "x-should-retry: false" with it, and Retry-After from Refusal.RetryAfter
// for information: no retry storm. A rate-limit refusal lasts until the
// minute ends: Retry-After (1–60 s, RateRefusal.RetryAfterSeconds) is what
// the clients wait before their retry, as with OpenAI; when the request
// alone exceeds a token limit (RateRefusal.TooLarge) waiting cannot help,
// so x-should-retry: false as well.
//
// # Budgets across gateways and the overshoot bound
//
// Each Enforcer keeps, per budget, subject and period, an allowance granted
// by the Ledger. The Ledger keeps Spent (committed spend of all gateways)
// and Held (allowance granted and not yet given back) and never grants
// allowance that would take Spent + Held above the limit. An Enforcer
// reserves a call's worst case out of its allowance, locally (a mutex, no
// round trip); only when the allowance does not cover the call does it ask
// the ledger, synchronously, for the shortfall plus a lease
// (Options.LeaseShare of the limit, 2% by default) so that the next calls
// are local again. Settle moves the reservation to local pending spend;
// Sync (every SyncInterval, 100 ms by default) commits pending spend
// (Spent += p, Held −= p) and gives back the allowance of subjects idle
// since the previous Sync.
//
// The bound. Let the calls of one budget, subject and period have worst
// cases w_i and actual (settled) costs a_i. Then, across any number of
// gateways sharing a Ledger,
//
//	total settled spend ≤ limit + Σ_i max(0, a_i − w_i)
//
// In words: the overshoot is at most what calls cost beyond the worst case
// reserved for them, and it is 0 when every worst case is an upper bound
// (WorstCase is one when token counts and prices are right; unknown costs
// keep the worst case), tighter than the issue's "at most the in-flight
// reservations": in-flight reservations never overshoot, only the excess
// of a call over its own reservation does. Proof sketch: every Enforcer keeps
// reserved + pending ≤ allowance + (its settled excess not yet absorbed);
// a grant keeps Spent + Held ≤ limit; a commit of p with release r =
// min(p, allowance) raises Spent + Held by p − r, which is positive only
// when an excess is absorbed, and by no more than that excess. TestOvershoot
// measures it with 3 Enforcers on one MemLedger.
//
// Refusals. Reserve refuses when the local view — committed spend of all
// gateways, plus the allowance other gateways hold, plus this gateway's
// reservations and uncommitted spend — plus the call's worst case exceeds
// the limit (Refusal.Spent is that view). Allowance held idle by another
// gateway thus counts as spent for at most two sync intervals (it is given
// back by the first Sync that finds it unused), and a lease is at most
// LeaseShare of the limit, so N gateways hold at most N·LeaseShare idle.
// After a refusal, the same subject is refused from the cached view for one
// SyncInterval without a round trip, so a runaway client costs the store
// nothing.
//
// Why leases rather than a round trip per call: the check must stay in
// microseconds on a warm key (a Postgres round trip is hundreds), and a
// lease keeps the bound exact where a periodically synchronised view of
// the others' spend would overshoot by what they spent since the last sync.
// The sync interval bounds only how long idle allowance looks spent, how
// late soft alerts fire, and the store's load (≤ 10 commits per second per
// active budget and subject per gateway).
//
// Periods are calendar periods in UTC read from the Clock; a reservation
// settles into the period it was made in (its account lives on until Sync
// has drained it), and the spend of an ended period does not count in the
// next.
//
// A gateway that dies keeps its allowance Held in the ledger until the
// period ends: stores should expire a holder's share when it has not been
// seen for many sync intervals.
//
// # Rate limits
//
// See Window: fixed one-minute windows, exact to the request with a shared
// Counter (one round trip per request) or MemCounter. Tokens per minute
// count the request's estimated tokens up front and are corrected with the
// actual usage on Settle.
package budget
