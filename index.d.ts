// Types of `fallback-mechanisms`. Hand-written, because these shapes are the
// public contract (API.md §1): `any` payloads, real `Date` fields, string
// unions and generics, which the generated `binding.d.ts` cannot express.

/** Which fallback a result came from (`'alternative'`: one of `alternatives` answered). */
export type FallbackType = 'cache' | 'skip' | 'queue' | 'default' | 'alternative';

/**
 * What kind of failure an error is (README, "Failure classes"): `classify(error)` says,
 * from the shapes OpenAI, Anthropic, Amazon Bedrock, Google, the AI SDK and Node.js throw.
 */
export type FailureClass =
  | 'rateLimit'
  | 'overloaded'
  | 'contextWindow'
  | 'contentPolicy'
  | 'auth'
  | 'timeout'
  | 'network'
  | 'other';
/** What kind of work a queued job is. */
export type JobType = 'ai' | 'integration' | 'analytics' | 'notification';
/** Jobs of higher priority are handed out first. */
export type JobPriority = 'low' | 'medium' | 'high';
/** Where a job is in its life. */
export type JobStatus = 'pending' | 'processing' | 'completed' | 'failed';

/** A cached AI response, as `AIResponseCache.get` returns it (a fresh copy). */
export interface CachedAIResponse {
  prompt: string;
  response: any;
  timestamp: Date;
  modelId: string;
  expiresAt: Date;
}

/** A job in the background queue (every read returns a fresh snapshot). */
export interface QueuedJob {
  id: string;
  type: JobType;
  operation: string;
  payload: any;
  userId: string;
  priority: JobPriority;
  createdAt: Date;
  retryCount: number;
  maxRetries: number;
  /** When a retried job becomes ready again. */
  nextRetryAt?: Date;
  status: JobStatus;
  /** The error of the last failed attempt (`'lease expired'` for a lost worker). */
  lastError?: string;
  /** When the job last changed status. */
  updatedAt?: Date;
}

/** One recorded failure of an integration. */
export interface IntegrationFailure {
  service: string;
  operation: string;
  error: string;
  timestamp: Date;
  skipReason: string;
}

/** What a building block (`fallbackToCachedAI`, ...) returns. */
export interface FallbackResult<T> {
  success: boolean;
  data?: T;
  usedFallback: boolean;
  fallbackType: FallbackType;
  message: string;
  /** Set to `{ stale: true }` when an expired entry was served under stale-if-error. */
  metadata?: { stale?: boolean };
}

/** What `executeWithFallback` resolves with. */
export interface ServiceResult<T> {
  success: boolean;
  data?: T;
  error?: Error;
  message?: string;
  timestamp: Date;
  /**
   * On a fallback: `{ usedFallback: true, fallbackType, jobId? (queue), stale? (cache) }`;
   * on failure: `{ usedFallback: false, originalError }`.
   */
  metadata?: ResultMetadata;
}

/** The `metadata` of what `executeWithFallback` resolves with. */
export interface ResultMetadata extends Record<string, any> {
  /**
   * After a failure (a fallback of any type, an alternative that answered, a failed
   * result): the class of the error the result reports, the primary's when it failed.
   */
  errorClass?: FailureClass;
  /** The models passed over for a shared rate limit (`limits`), in order. */
  limited?: string[];
  /** The key of the spent `budget` that refused the call. */
  overBudget?: string;
  /** `true` when the hedge (`hedge`) answered. */
  hedged?: boolean;
}

/** How `executeWithFallback` may fall back. */
export interface FallbackOptions<T> {
  /** Names the operation (the queued job's `operation`, the skipped service by default). */
  operationName: string;
  /** Needed, with `queueOnFailure`, to queue the work. */
  userId?: string;
  /** Caches a success under this key; serves the cached answer on failure. */
  cacheKey?: { prompt: string; modelId: string };
  /** Skip the step on failure and record it on `integrationFailureManager`. */
  allowSkip?: boolean;
  /** Queue the work on `backgroundJobQueue` on failure (needs `userId`). */
  queueOnFailure?: { type: JobType; payload: any; priority?: JobPriority };
  /**
   * Used on failure when nothing better applies. For a streaming call (`T` a stream)
   * it may be a chunk, such as a string: it is replayed as a stream of `T`'s kind.
   */
  defaultValue?: T | StreamChunk<T>;
  /** The name a skipped failure is recorded under (default: `operationName`). */
  service?: string;
  /**
   * Retry the operation before falling back: up to `maxRetries` (3) more attempts,
   * waiting from `baseDelayMs` (1000) up to `maxDelayMs` (30000), with decorrelated
   * jitter unless `jitter` is `false`/`'none'`. An error with `retryable: false`, or
   * one `retryIf` rejects, is not retried. An error asking for a wait gets at least
   * that wait: `retryAfterMs`, else a `retry-after-ms` (ms) or `Retry-After` (seconds
   * or an HTTP-date) header on `error.response.headers`, `error.headers` or
   * `error.responseHeaders` (a plain object in any case, or a fetch `Headers`).
   * Results then carry `metadata.attempts`.
   */
  retry?: {
    maxRetries?: number;
    baseDelayMs?: number;
    maxDelayMs?: number;
    jitter?: boolean | 'decorrelated' | 'none';
    retryIf?: (error: any) => boolean;
    /**
     * The longest wait an error may ask for (default 60000 ms). An error asking for
     * more (`Retry-After: 86400`, `retryAfterMs: Infinity`) is not retried: the call
     * gives up at once and the fallbacks run.
     */
    maxRetryAfterMs?: number;
  };
  /** With `allowSkip`: once the service has this many failures in the window, skip without calling (`metadata.skippedWithoutCalling`). */
  skipThreshold?: number;
  /** Each attempt's time limit: the attempt fails with `code: 'TIMEOUT'` and the AbortSignal the operation gets aborts. */
  timeoutMs?: number;
  /** Cancels the whole call: the operation's signal aborts, no fallback runs, and the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** With `cacheKey`: overlapping calls with the same (prompt, modelId) share one operation call and its result. */
  dedupe?: boolean;
  /**
   * Other models or providers, tried in order once the primary (and its retries) failed,
   * before the cache. Each gets the same `retry`, `timeoutMs` and `signal` treatment. The
   * first that succeeds answers: `metadata.fallbackType` is `'alternative'` and
   * `metadata.alternative` its `name`; its answer is cached under `cacheKey`. A model
   * (the primary as `service ?? operationName`, an alternative by `name`) throttled with
   * status 429/503/529 or a Retry-After is benched for that long (see `cooldownMs`),
   * shared through the store, and passed over up front until then (`metadata.benched`).
   */
  alternatives?: Array<FallbackAlternative<T>>;
  /**
   * Which errors move on to the next alternative (default: every error; the caller's own
   * abort ends the call anyway). An async rule is awaited; one that throws or rejects moves on.
   */
  alternativesOn?: (error: any) => boolean | PromiseLike<boolean>;
  /** How long a throttled model is benched when its error gives no Retry-After, in ms (default 30000; 0: never). */
  cooldownMs?: number;
  /** The longest a model is benched, whatever its Retry-After asks, in ms (default 300000). */
  maxCooldownMs?: number;
  /**
   * This call streams: a cached or default answer comes back as a ReadableStream even
   * when the operation failed before returning a stream. `false`: never replay as a stream.
   * Without it, the shape of the stream the operation returned (now or before) is used.
   */
  stream?: boolean;
  /**
   * A circuit breaker for the primary (`service ?? operationName`), kept in the store and
   * shared by every instance on it (README, "Resilience across instances"); one set by
   * `configure({ breakers })` under that name applies otherwise. An open breaker passes
   * the model over without a call.
   */
  breaker?: BreakerOptions;
  /**
   * Rate limits for the primary, shared the same way (or `configure({ limits })`). A model
   * over its limit is passed over (`metadata.limited`); with no model left the call falls
   * back with `code: 'RATE_LIMITED'`.
   */
  limits?: LimitOptions;
  /**
   * A token or cost budget the call is charged to: checked before each model is called
   * (spent >= budget: refused, the call falls back with `code: 'BUDGET_EXCEEDED'` and
   * `metadata.overBudget` the key) and charged after a success.
   */
  budget?: BudgetOptions;
  /**
   * What a result spent, for `limits.tokensPerMinute` and `budget`: a number is tokens.
   * Without it an AI SDK result's `usage` (`totalTokens`) is read.
   */
  usage?: (result: T) => number | { tokens?: number; cost?: number };
  /**
   * Hedging for latency: when a model has not answered (or streamed its first chunk) within
   * `afterMs` (or its p95 answer time in this process, after 20 answers: `'p95'`), the next
   * alternative starts too; the first to answer wins and the other's signal aborts
   * (`metadata.hedged: true` when the hedge answered). At most `maxPerMinute` (60) extra
   * calls a minute per process. For calls without `retry`, `timeoutMs` and `signal`.
   */
  hedge?: { afterMs: number | 'p95'; maxPerMinute?: number };
}

/** Another model or provider for `executeWithFallback`'s `alternatives`. */
export interface FallbackAlternative<T> {
  /** The model's name: what it is benched under, and `metadata.alternative` when it answers. */
  name: string;
  /** Gets an AbortSignal when `timeoutMs` or `signal` is given. */
  operation: (signal?: AbortSignal) => Promise<T>;
  /** This model's shared circuit breaker (keyed by `name`). */
  breaker?: BreakerOptions;
  /** This model's shared rate limits (keyed by `name`). */
  limits?: LimitOptions;
  /**
   * The failure classes this alternative answers (default: all). After a model fails with
   * another class, it is passed over without a call; when no alternative is left, the call
   * falls back (cache, default, queue, skip) with the error.
   */
  on?: FailureClass[];
}

/**
 * A circuit breaker shared through the store. It opens when, over the last `size` calls
 * (`window: 'count'`, default 20) or the calls of the last `size` ms (`'time'`, default
 * 60000), at least `minimumCalls` (10) were made and `failureRatio` (0.5) of them failed,
 * or `slowCallRatio` (1) of them took `slowCallMs` or longer. After `halfOpenAfterMs`
 * (30000) one probe runs across every instance (a lease of that length: a probe whose
 * instance died is replaced); its success closes the breaker, its failure opens it again.
 */
export interface BreakerOptions {
  window?: 'count' | 'time';
  size?: number;
  failureRatio?: number;
  minimumCalls?: number;
  slowCallMs?: number;
  slowCallRatio?: number;
  halfOpenAfterMs?: number;
}

/**
 * Rate limits shared through the store: requests and tokens per sliding minute (no 60 s
 * window ever sees more), and calls in flight (slots leased for 30 s, renewed while the
 * call runs, released when it ends or when its process dies and the lease runs out).
 */
export interface LimitOptions {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  concurrency?: number;
}

/** A budget of tokens and/or cost under `key` (a user, a model, a tag) per UTC period. */
export interface BudgetOptions {
  key: string;
  tokens?: number;
  cost?: number;
  per: 'minute' | 'hour' | 'day' | 'month';
}

/** The chunk type of a streamed answer `T` (a ReadableStream or an async iterable); `never` for other answers. */
export type StreamChunk<T> = T extends ReadableStream<infer C> ? C : T extends AsyncIterable<infer C> ? C : never;

/**
 * Where an instance keeps its state (constructor options). Without
 * `storagePath` it lives in memory; with it, in a SQLite file that survives
 * restarts and that every process opening it shares.
 */
export interface StorageOptions {
  /** The SQLite file (created with its directory if missing). */
  storagePath?: string;
  /**
   * `'normal'` (default): a change survives the process being killed once the
   * call returns. `'fsync'`: it survives power loss too (each write waits for the disk).
   */
  durability?: 'normal' | 'fsync';
  /**
   * With `storagePath`: how long a call waits for another process's lock on
   * the file before throwing an `Error` with code `'STORAGE_BUSY'`
   * (default 250 ms; opening the file waits up to 10 s).
   */
  busyTimeoutMs?: number;
  /**
   * Keeps the state on a Redis (7+) or Valkey (7/8) server instead, shared by
   * every instance of the app on every machine: `redis://[user:password@]host[:port][/db]`,
   * or `rediss://...` for TLS: the server's certificate is checked against the system's root
   * certificates, or only against the CA certificates of `redisTlsCa` when given; redis-rs's
   * `#insecure` (no check) is refused. A malformed URL is a `TypeError` with code
   * `'ERR_INVALID_URL'`. Nothing connects until the first call; an unreachable server or an
   * untrusted certificate shows as `'STORAGE_UNAVAILABLE'` (messages never hold the password),
   * and only then is a job or a failure kept here to be written later (with `storagePath` too,
   * in that file, not only in memory). A server that answers with a refusal is never taken
   * for one that is away: out of memory is `'STORAGE_FULL'`, a user the server refuses
   * (an ACL without `EVALSHA`) `'STORAGE_DENIED'`, foreign data at a key `'STORAGE_CORRUPT'`
   * naming the key; nothing is written or kept then.
   */
  redisUrl?: string;
  /** With `redisUrl`: what every key starts with (default `'fallback-mechanisms'`; one hash tag). */
  keyPrefix?: string;
  /** With `redisUrl`: the longest a synchronous call waits for the server (default 500 ms). */
  redisTimeoutMs?: number;
  /**
   * With a `rediss://` `redisUrl`: the path of a PEM file of CA certificates to trust instead
   * of the system's roots (a server with a self-signed certificate).
   */
  redisTlsCa?: string;
}

/** Bounds and defaults of a response cache. */
interface AIResponseCacheOptions {
  /** Entries held at most; least recently used go first (default 10,000). */
  maxEntries?: number;
  /** Prompt + response bytes held at most (default 256 MiB). */
  maxBytes?: number;
  /** TTL when `set` gets none (default 24 h). */
  defaultTtlMs?: number;
  /** How long an expired entry may still serve the failure path (default 0: off). */
  staleIfErrorMs?: number;
}

/** Bounds of a job queue. */
interface BackgroundJobQueueOptions {
  /** Jobs held at most, in every status (default 10,000). */
  maxSize?: number;
  /**
   * Bytes held at most by the jobs in every status: the UTF-8 of each job's
   * strings (payload JSON, operation, userId, type, id, lastError; default
   * 256 MiB). Finished jobs are evicted to make room, never a live one.
   */
  maxBytes?: number;
  /** How long a job may stay `processing` before it counts as failed (default 5 min). */
  leaseMs?: number;
  /**
   * Stalls a job may have (default 3): times its lease ended without an outcome from its
   * worker, because the lease ran out or the worker's thread or process ended while running
   * it. Each stall past this is a failed attempt whose `lastError` says so, following the
   * retry and dead-letter rules, so a job that ends its worker every time cannot come back
   * for ever. A whole number >= 0; this instance's setting, like `backoffMs`.
   */
  maxStalls?: number;
  /** Largest payload, in bytes of JSON (default 1 MiB). */
  maxPayloadBytes?: number;
  /**
   * Delays before the retries of a failed job, in ms: entry n−1 before retry n, the
   * last repeating (default `[60000, 300000, 900000, 1800000]`: 1, 5, 15, then 30 min).
   * A non-empty array of non-negative integers. Applied when a failure is recorded;
   * with a storage file it is this instance's setting, not stored in the file.
   */
  backoffMs?: number[];
}

/** Bounds of a failure history. */
interface IntegrationFailureManagerOptions {
  /** How far back `shouldSkipService` looks (default 5 min). */
  windowMs?: number;
  /** Failures held per service (default 100). */
  maxPerService?: number;
  /**
   * Bytes held at most by all the failures together: the UTF-8 of each
   * record's service, operation, error and skipReason (default 64 MiB). The
   * oldest records go first, whatever their service; the newest is always kept.
   */
  maxBytes?: number;
}

/**
 * Runs `operation`; on failure falls back, in order, to a cached answer, the
 * default (with a `cacheKey`), a queued job, a skip, the default. Resolves a
 * `ServiceResult` and never rejects because the operation failed; rejects with
 * a `TypeError` only for bad arguments.
 */
export function executeWithFallback<T>(
  /** Gets an AbortSignal when `timeoutMs` or `signal` is given. */
  operation: (signal?: AbortSignal) => Promise<T>,
  options: FallbackOptions<T>,
): Promise<ServiceResult<T>>;

/** The friendly message for a fallback type; the error is never shown. */
export function getUserFriendlyMessage(error: unknown, fallbackType?: FallbackType | string): string;

/** A cached AI response for (prompt, modelId), else `defaultValue`, else `success: false`. */
export function fallbackToCachedAI<T>(
  prompt: string,
  modelId: string,
  defaultValue?: T,
): Promise<FallbackResult<T>>;

/** Records the failure on `integrationFailureManager` and reports the step as skipped. */
export function skipFailedIntegration(service: string, operation: string, error: Error): FallbackResult<null>;

/** Queues a job on `backgroundJobQueue`; `data` is its id. Throws `QUEUE_FULL` when full. */
export function queueForLater(
  type: JobType,
  operation: string,
  payload: any,
  userId: string,
  priority?: JobPriority,
  maxRetries?: number,
): FallbackResult<string>;

/** Sets where the exported singletons keep their state, and their bounds and defaults. */
export function configure(options: {
  /**
   * Keeps the singletons' state in this SQLite file (also set by the
   * environment variable `FALLBACK_MECHANISMS_DB`). Only before they are
   * first used; after that an `Error` with code `'ALREADY_IN_USE'`.
   */
  storagePath?: string;
  /** With `storagePath`: `'normal'` (default) or `'fsync'`. */
  durability?: 'normal' | 'fsync';
  /**
   * How long the singletons' calls wait for another process's lock on their
   * file before throwing `'STORAGE_BUSY'` (default 250 ms); adjustable at any time.
   */
  busyTimeoutMs?: number;
  /**
   * Keeps the singletons' state on a Redis (7+) or Valkey (7/8) server instead, shared by
   * every instance of the app on every machine (also set by the
   * environment variables `FALLBACK_MECHANISMS_REDIS_URL` and
   * `FALLBACK_MECHANISMS_REDIS_PREFIX`): `redis://[user:password@]host[:port][/db]`,
   * or `rediss://...` for TLS: the server's certificate is checked against the system's root
   * certificates, or only against the CA certificates of `redisTlsCa` when given; redis-rs's
   * `#insecure` (no check) is refused. A malformed URL is a `TypeError` with code
   * `'ERR_INVALID_URL'`. Nothing connects until the first call; an unreachable server or an
   * untrusted certificate shows as `'STORAGE_UNAVAILABLE'` (messages never hold the password),
   * and only then is a job or a failure kept here to be written later (with `storagePath` too,
   * in that file, not only in memory). A server that answers with a refusal is never taken
   * for one that is away: out of memory is `'STORAGE_FULL'`, a user the server refuses
   * (an ACL without `EVALSHA`) `'STORAGE_DENIED'`, foreign data at a key `'STORAGE_CORRUPT'`
   * naming the key; nothing is written or kept then.
   */
  redisUrl?: string;
  /** With `redisUrl`: what every key starts with (default `'fallback-mechanisms'`; one hash tag). */
  keyPrefix?: string;
  /** With `redisUrl`: the longest a synchronous call waits for the server (default 500 ms). */
  redisTimeoutMs?: number;
  /**
   * With a `rediss://` `redisUrl`: the path of a PEM file of CA certificates to trust instead
   * of the system's roots (a server with a self-signed certificate); also set by the
   * environment variable `FALLBACK_MECHANISMS_REDIS_TLS_CA`.
   */
  redisTlsCa?: string;
  /**
   * What of an error's message goes to OpenTelemetry (span statuses, span event
   * attributes): `redact(message, error)` gets the message as the contract reads it and
   * the thrown value, and returns the text to record (cut to 1,000 characters). By
   * default, and whenever `redact` throws or returns something other than a string, only
   * the error's name, HTTP status and code are recorded (`'Error 401 invalid_api_key'`),
   * never its message, which may hold a key or a user's data. `undefined` or `null` goes
   * back to the default; anything else that is not a function is a `TypeError` with code
   * `'ERR_INVALID_ARG_TYPE'`, and nothing is changed. The `diagnostics_channel` messages
   * keep the message: their subscribers are the app's own code. Adjustable at any time.
   */
  redact?: ((message: string, error: unknown) => string) | null;
  /** Shared circuit breakers by model or service name, for every call (a call's own `breaker` wins); `null` clears them. */
  breakers?: Record<string, BreakerOptions> | null;
  /** Shared rate limits by model or service name, for every call (a call's own `limits` win); `null` clears them. */
  limits?: Record<string, LimitOptions> | null;
  /**
   * Replaces the built-in `classify` for every call: called as `classify(error, builtIn)`
   * on failures only. One that throws or returns something other than a `FailureClass` is
   * answered by the built-in (with one warning, code `'FALLBACK_CLASSIFY_FAILED'`).
   * `undefined` or `null` goes back to the built-in; anything else that is not a function is
   * a `TypeError` with code `'ERR_INVALID_ARG_TYPE'`, and nothing is changed.
   */
  classify?: ((error: unknown, builtIn: (error: unknown) => FailureClass) => FailureClass) | null;
  cache?: AIResponseCacheOptions;
  queue?: BackgroundJobQueueOptions;
  failures?: IntegrationFailureManagerOptions;
}): void;

/** Who asked for a service call; `operation` names its circuit breaker. */
export interface ServiceContext {
  operation: string;
  userId?: string;
  timestamp: Date;
  [key: string]: unknown;
}

/** How `executeService` retries and falls back. */
export interface ServiceOptions<T> {
  /** Retries after the first attempt (default 3). */
  maxRetries?: number;
  /** First retry delay in ms (default 1000); later ones grow, with decorrelated jitter. */
  baseDelay?: number;
  /**
   * Longest retry delay in ms (default 30000). An error can ask for more, up to
   * `maxRetryAfter`: `retryAfterMs`, else a `retry-after-ms` (ms) or `Retry-After`
   * (seconds or an HTTP-date) header on `error.response.headers`, `error.headers` or
   * `error.responseHeaders` (a plain object in any case, or a fetch `Headers`).
   */
  maxDelay?: number;
  /**
   * The longest wait an error may ask for, in ms (default 60000). An error asking
   * for more is not retried: the call gives up at once (a failed call for the
   * breaker) and the fallbacks run.
   */
  maxRetryAfter?: number;
  /**
   * Consecutive failed calls (after their retries) that open the operation's breaker
   * (default 5; an integer >= 1). The breaker takes the settings of the latest call
   * for its operation.
   */
  breakerThreshold?: number;
  /**
   * How long the breaker stays open before one trial call goes through, in ms
   * (default 60000; an integer >= 1); also how long a trial may go unanswered.
   */
  breakerResetMs?: number;
  /** Used when every attempt failed or the breaker is open. */
  fallback?: () => T | Promise<T>;
  /** Used when there is no fallback, or it failed too. */
  gracefulDegradation?: () => T | Promise<T>;
}

/** A circuit breaker's state. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * Runs `operation` with retries and a circuit breaker per `context.operation`
 * (open after `breakerThreshold`, default 5, consecutive failed calls; after
 * `breakerResetMs`, default 60 s, exactly one trial call goes through, and its
 * success closes the breaker), then `options.fallback`, then
 * `options.gracefulDegradation`. An error with `retryable: false` is not retried.
 * `metadata` carries `attempts` and `circuitState`. Resolves; rejects only for
 * bad arguments.
 */
export function executeService<T>(
  operation: () => Promise<T>,
  context: ServiceContext,
  options?: ServiceOptions<T>,
): Promise<ServiceResult<T>>;

/**
 * Every breaker `executeService` has used, by operation name, and every
 * benched model (see `getCooldowns`) by its name: as
 * `{ state: 'open', failureCount: 0, openedAt: since, cooldownUntil }`, or
 * with `cooldownUntil` added to the breaker of the same name. When the
 * store cannot be read (Redis away), the breakers alone.
 */
export function getCircuitBreakerStatus(): Record<
  string,
  {
    state: CircuitState;
    failureCount: number;
    openedAt?: Date;
    cooldownUntil?: Date;
    /** Kept in the store and shared by every instance (a `breaker` option or a cooldown). */
    shared: boolean;
    /** The instance (`<pid>-<random>`) running the half-open probe, or `null`. */
    probeHeldBy: string | null;
    probeSince: Date | null;
  }
>;

/** Every shared rate limit in use, by model or service name: what was used in the last minute. */
export function getLimits(): Record<
  string,
  { limits: LimitOptions; requests: number; tokens: number; concurrent: number; windowMs: number }
>;

/** Every budget in use, by key: what was spent in the current period and when it resets. */
export function getBudgets(): Record<
  string,
  { tokens: number; cost: number; limits: Omit<BudgetOptions, 'key'>; resetsAt: Date }
>;

/** A benched model: since when, until when, what is left and why. */
export interface Cooldown {
  since: Date;
  until: Date;
  remainingMs: number;
  reason: string;
}

/**
 * The models benched now, by name (a primary's `service ?? operationName`,
 * an alternative's `name`): after a failure with HTTP 429, 503 or 529 or a
 * `Retry-After`, for the wait it asked (else `cooldownMs`, default 30 s),
 * at most `maxCooldownMs` (default 5 min). Kept with the singletons'
 * failure history (memory, SQLite file or Redis), so every call and every
 * instance sharing it skips them; `integrationFailureManager.clearFailures`
 * clears them. Throws the store's coded error (`STORAGE_UNAVAILABLE`, ...)
 * when it cannot be read.
 */
export function getCooldowns(): Record<string, Cooldown>;

/**
 * The built-in failure classifier: what kind of failure `error` is, from its HTTP status,
 * codes, types, names and message (and the errors it wraps: `lastError`, `cause`). Never
 * throws; `'other'` for what it does not recognise.
 */
export function classify(error: unknown): FailureClass;

/** Where the singletons keep their state, and whether it answers. */
export interface StorageStatus {
  backend: 'memory' | 'sqlite' | 'redis';
  /** The file, or the server (password hidden) and key prefix; `null` in memory. */
  location: string | null;
  /** Whether the store answered just now (on Redis: one round trip). */
  reachable: boolean;
  /** The last error the store gave, password hidden. */
  lastError: string | null;
  lastErrorAt: Date | null;
  /** Jobs accepted while the server was unreachable, waiting here to be written to it. */
  localJobs: number;
  /**
   * On Redis: jobs found gone (their hash deleted, or evicted by the server) and dropped from
   * the queue's indexes, by every instance on the prefix; `null` while the server does not
   * answer; 0 elsewhere.
   */
  missingJobs: number | null;
  /**
   * On Redis: writes accepted while the server did not answer that it later refused for good
   * (a job over another instance's byte bound, foreign data at its keys, a user not allowed):
   * set aside with a coded warning (`REDIS_WRITE_SET_ASIDE`), never sent again; 0 elsewhere.
   */
  setAsideWrites: number;
  /** On Redis: the server's `maxmemory-policy` once read (anything but `noeviction` is warned about); `null` elsewhere. */
  evictionPolicy: string | null;
  /**
   * On Redis: the copy of cache entries and failure times that this process answers
   * `aiResponseCache.get`, `fallbackToCachedAI` and `shouldSkipService` from, without a round
   * trip. `live` while the server announces every change to it (RESP3 `CLIENT TRACKING`);
   * otherwise each read asks the server. `null` elsewhere.
   */
  localCopy: { live: boolean; entries: number; bytes: number } | null;
  /**
   * On Redis: `'cluster'` when `redisUrl` names a Redis Cluster (any one node, or a comma-separated
   * list of seed nodes), `'standalone'` for a single server; `null` until the server has answered
   * once, and elsewhere.
   */
  redisMode: 'standalone' | 'cluster' | null;
}

/** Where the singletons keep their state, and whether it answers. */
export function getStorageStatus(): StorageStatus;

/** AI responses by exact (prompt, modelId), with TTLs and LRU bounds. */
export declare class AIResponseCache {
  constructor(options?: AIResponseCacheOptions & StorageOptions);
  /** Stores a JSON copy of `response`; `ttl` in ms (`undefined`/`0`: the default TTL). */
  set(prompt: string, response: any, modelId: string, ttl?: number): void;
  /** The live entry (a fresh copy), or `null`. */
  get(prompt: string, modelId: string): CachedAIResponse | null;
  /** Removes the entry; returns whether there was one. */
  delete(prompt: string, modelId: string): boolean;
  /** Empties the cache and resets its counters. In memory the old entries are freed on another thread. */
  clear(): void;
  getStats(): {
    size: number;
    oldestEntry?: Date;
    newestEntry?: Date;
    hits?: number;
    misses?: number;
    evictions?: number;
    bytes?: number;
  };
}

/** Runs one job; a throw (or rejection) fails the job with its message. */
export type JobHandler = (job: QueuedJob, signal: AbortSignal) => unknown | Promise<unknown>;

/** How jobs are run, by a worker (`process`) or a drain. */
interface JobRunOptions {
  /** Jobs running at once (default 1). */
  concurrency?: number;
  /** Jobs of one user running at once (default: no limit beyond `concurrency`). */
  perUserConcurrency?: number;
  /** A handler running longer is aborted through its signal and its job failed (code `'TIMEOUT'`). */
  jobTimeoutMs?: number;
  onCompleted?: (job: QueuedJob) => void;
  /** After every failed attempt (the job is `pending` again, or `failed` for good). */
  onFailed?: (job: QueuedJob, error: any) => void;
  /** When a job has failed for good. */
  onDeadLetter?: (job: QueuedJob) => void;
}

/** How a worker runs jobs. */
interface WorkerOptions extends JobRunOptions {
  /**
   * How often to look for ready jobs, in ms (default 1000); a finished job frees its slot at once.
   * On Redis an idle worker waits for the queue's wake signal instead and looks anyway this often
   * (default there 30000).
   */
  pollIntervalMs?: number;
  /**
   * Keep Node.js alive until `stop()`, even with nothing to do (default true, as BullMQ's
   * worker does: `node worker.js` whose only line is `process(handlers)` keeps running).
   * `false`: an idle worker lets the process exit.
   */
  keepAlive?: boolean;
}

/** A drain's budget (whole numbers >= 0; default: none, it runs until nothing is due). */
export interface DrainOptions extends JobRunOptions {
  /** Start at most this many jobs. */
  maxJobs?: number;
  /** Start no job once this many ms have passed since the call; jobs already running finish (bound them with `jobTimeoutMs`). */
  maxMs?: number;
}

/** What a drain did. */
export interface DrainResult {
  /** Jobs handed to a handler. */
  processed: number;
  /** Jobs recorded completed. */
  completed: number;
  /** Failed attempts recorded (back to pending after the backoff, or failed for good). */
  failed: number;
  /** Of `failed`, the jobs that failed for good. */
  deadLettered: number;
  /** Pending jobs due now when the drain ended (not those waiting for a retry time); `null` when the store could not say. */
  remaining: number | null;
  /** Why it stopped taking jobs. */
  stoppedBy: 'nothingDue' | 'maxJobs' | 'maxMs' | 'storageError';
  /** From the call until the last job it started was done. */
  elapsedMs: number;
  /** The store's error that ended the drain (or kept it from counting `remaining`); `null` otherwise. */
  error: { code: string; message: string } | null;
}

/** A running worker. */
export interface WorkerHandle {
  /** Jobs running now. */
  readonly running: number;
  /** No new jobs; waits for running ones up to `graceMs` (default 0), then aborts them and returns them to pending. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/**
 * One page of a listing: skip `offset` items (default 0), then return at most
 * `limit` (default: all the rest). Whole numbers >= 0; the order is the
 * listing's usual one (enqueue order for jobs, oldest first for failures).
 */
export interface PageOptions {
  limit?: number;
  offset?: number;
}

/** Background jobs: priority then FIFO, retries with backoff, leases, a size bound. */
export declare class BackgroundJobQueue {
  constructor(options?: BackgroundJobQueueOptions & StorageOptions);
  /** Adds a job and returns its id. */
  enqueue(job: Omit<QueuedJob, 'id' | 'createdAt' | 'status'>): string;
  /** The ready job of highest priority, now `processing`; `null` when none is ready. */
  dequeue(): QueuedJob | null;
  /** Marks a job completed; returns false for an unknown or finished job. */
  complete(jobId: string): boolean;
  /** Records a failed attempt; returns false for an unknown or finished job. */
  fail(jobId: string, error: string): boolean;
  /** Every job in enqueue order, or one page of them: O(n) for all, O(offset + limit) for a page (memory and file). */
  getAll(options?: PageOptions): QueuedJob[];
  /** The jobs in one status, in enqueue order; a page costs O(offset + limit) in memory, and in a file reads jobs in enqueue order until it is full. */
  getByStatus(status: JobStatus, options?: PageOptions): QueuedJob[];
  /** One user's jobs, in enqueue order; a page may still walk O(n) jobs to fill (no index by user). */
  getByUser(userId: string, options?: PageOptions): QueuedJob[];
  /** Removes completed jobs; returns how many went. In memory the removed jobs are freed on another thread. */
  clearCompleted(): number;
  /**
   * Starts a worker: ready jobs go to `handlers` (one function, or one per job type)
   * with an AbortSignal; leases are renewed while handlers run; polling and timeouts
   * are Rust-side timers.
   */
  process(handlers: JobHandler | Partial<Record<JobType, JobHandler>>, options?: WorkerOptions): WorkerHandle;
  /**
   * Runs the jobs due now through `handlers` as `process` does, within a budget, and
   * resolves once the jobs it started are done: for a cron-triggered route where no
   * worker lives on. Never waits for jobs not due yet. Rejects only for bad arguments.
   */
  drain(handlers: JobHandler | Partial<Record<JobType, JobHandler>>, options?: DrainOptions): Promise<DrainResult>;
  /** Dead letters back to work: the failed job `jobId`, or every failed job, goes back to pending with a fresh retry count. Returns how many. */
  retryFailed(jobId?: string): number;
  getStats(): { total: number; pending: number; processing: number; completed: number; failed: number };
}

/** Failure history per integration, and whether to skip a service up front. */
export declare class IntegrationFailureManager {
  constructor(options?: IntegrationFailureManagerOptions & StorageOptions);
  recordFailure(service: string, operation: string, error: string, skipReason: string): void;
  /** One service's failures, or all, oldest first; `options` takes one page. */
  getFailures(service?: string, options?: PageOptions): IntegrationFailure[];
  /** True when at least `threshold` (default 3) failures fall inside the window. */
  shouldSkipService(service: string, threshold?: number): boolean;
  /**
   * Forgets one service's failures and its cooldown (see `getCooldowns`), or
   * all failures and all cooldowns; returns whether any were held.
   */
  clearFailures(service?: string): boolean;
  getStats(): Record<string, { count: number; lastFailure: Date }>;
}

/** The process-wide cache `executeWithFallback` uses. */
export declare const aiResponseCache: AIResponseCache;
/** The process-wide queue `executeWithFallback` and `queueForLater` use. */
export declare const backgroundJobQueue: BackgroundJobQueue;
/** The process-wide failure history `executeWithFallback` and `skipFailedIntegration` use. */
export declare const integrationFailureManager: IntegrationFailureManager;
