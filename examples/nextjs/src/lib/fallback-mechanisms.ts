import { configure, type BreakerOptions, type LimitOptions } from "fallback-mechanisms";

export * from "fallback-mechanisms";

// Each model's guards, set once by name for every call that uses the model,
// whichever route makes it. They are kept in the store: with Redis, every
// instance of the app counts against the same breakers and limits, as
// every instance calls the providers with the same keys.

/** Circuit breakers: a model that keeps failing is passed over without a call, by every instance. */
export const MODEL_BREAKERS: Record<string, BreakerOptions> = {
  // Half the last 10 calls failed (at least 5 seen): stop calling gpt-4o
  // for a minute, then let one instance try it again.
  "gpt-4o": { window: "count", size: 10, minimumCalls: 5, failureRatio: 0.5, halfOpenAfterMs: 60_000 },
};

/** Rate limits: what each provider account allows per minute, for all instances together. */
export const MODEL_LIMITS: Record<string, LimitOptions> = {
  // Well above what the chat's tests send: these only keep the instances
  // together under the accounts' limits.
  claude: { requestsPerMinute: 600 },
  haiku: { requestsPerMinute: 2_000 },
  // OpenAI's first usage tier for gpt-4o.
  "gpt-4o": { requestsPerMinute: 500, tokensPerMinute: 30_000 },
  // The backup account is on a low tier: a few requests a minute.
  "gpt-4o-mini": { requestsPerMinute: 10, tokensPerMinute: 40_000 },
};

// Evaluated again when Next.js bundles this module more than once: the same
// settings each time.
configure({ breakers: MODEL_BREAKERS, limits: MODEL_LIMITS });
