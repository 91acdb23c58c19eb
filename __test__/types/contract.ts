// The public types, checked against the contract (API.md §1): what must
// compile, and (with @ts-expect-error) what must not.

import {
  executeWithFallback,
  executeService,
  getUserFriendlyMessage,
  fallbackToCachedAI,
  skipFailedIntegration,
  queueForLater,
  configure,
  aiResponseCache,
  backgroundJobQueue,
  integrationFailureManager,
  AIResponseCache,
  BackgroundJobQueue,
  IntegrationFailureManager,
} from "@/lib/fallback-mechanisms";
import type {
  CachedAIResponse,
  QueuedJob,
  IntegrationFailure,
  FallbackResult,
  ServiceResult,
  FallbackOptions,
  FallbackType,
  JobType,
  JobPriority,
  JobStatus,
  WorkerHandle,
  PageOptions,
  DrainOptions,
  DrainResult,
} from "@/lib/fallback-mechanisms";

declare function fetchLike(signal: AbortSignal | undefined): Promise<number>;

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): void {}

expectType<Equal<FallbackType, "cache" | "skip" | "queue" | "default" | "alternative">>();
expectType<Equal<JobType, "ai" | "integration" | "analytics" | "notification">>();
expectType<Equal<JobPriority, "low" | "medium" | "high">>();
expectType<Equal<JobStatus, "pending" | "processing" | "completed" | "failed">>();
expectType<Equal<CachedAIResponse["timestamp"], Date>>();
expectType<Equal<QueuedJob["nextRetryAt"], Date | undefined>>();
expectType<Equal<IntegrationFailure["timestamp"], Date>>();
expectType<Equal<ServiceResult<number>["data"], number | undefined>>();
expectType<Equal<FallbackResult<string>["fallbackType"], FallbackType>>();

async function usage(): Promise<void> {
  const result: ServiceResult<{ title: string }> = await executeWithFallback(
    async () => ({ title: "t" }),
    { operationName: "op", defaultValue: { title: "d" }, service: "svc" },
  );
  const title: string | undefined = result.data?.title;
  const when: Date = result.timestamp;
  void title;
  void when;

  const options: FallbackOptions<number> = {
    operationName: "op",
    userId: "u",
    cacheKey: { prompt: "p", modelId: "m" },
    allowSkip: true,
    queueOnFailure: { type: "ai", payload: { any: "thing" }, priority: "high" },
    defaultValue: 1,
  };
  await executeWithFallback(async () => 2, options);
  await executeWithFallback(async () => 2, {
    operationName: "op",
    allowSkip: true,
    skipThreshold: 3,
    retry: { maxRetries: 2, baseDelayMs: 10, maxDelayMs: 100, jitter: "none", retryIf: (error) => error.status !== 400 },
  });
  const controller = new AbortController();
  await executeWithFallback((signal) => fetchLike(signal), { operationName: "op", timeoutMs: 100, signal: controller.signal, dedupe: true, cacheKey: { prompt: "p", modelId: "m" } });
  await executeWithFallback(async () => 2, { operationName: "op", retry: { maxRetryAfterMs: 10_000 } });
  const served = await executeService(async () => 2, { operation: "op", timestamp: new Date() }, { maxRetries: 1, maxDelay: 100, maxRetryAfter: 5_000, breakerThreshold: 3, breakerResetMs: 30_000 });
  const served2: number | undefined = served.data;
  void served2;
  // @ts-expect-error maxRetryAfter is a number
  await executeService(async () => 2, { operation: "op", timestamp: new Date() }, { maxRetryAfter: "60s" });
  // @ts-expect-error jitter is a boolean or 'decorrelated' | 'none'
  await executeWithFallback(async () => 2, { operationName: "op", retry: { jitter: "full" } });

  // @ts-expect-error operationName is required
  await executeWithFallback(async () => 1, {});
  // @ts-expect-error the job type is a union
  await executeWithFallback(async () => 1, { operationName: "op", queueOnFailure: { type: "email", payload: {} } });
  // @ts-expect-error the priority is a union
  await executeWithFallback(async () => 1, { operationName: "op", queueOnFailure: { type: "ai", payload: {}, priority: "urgent" } });
  // @ts-expect-error defaultValue must match the operation's type
  await executeWithFallback(async () => 1, { operationName: "op", defaultValue: "one" });

  const message: string = getUserFriendlyMessage(new Error("x"), "cache");
  getUserFriendlyMessage("anything");
  getUserFriendlyMessage(undefined, "custom");
  void message;

  const cached: FallbackResult<{ a: number }> = await fallbackToCachedAI("p", "m", { a: 1 });
  void cached;
  const skipped: FallbackResult<null> = skipFailedIntegration("svc", "op", new Error("x"));
  void skipped;
  const queued: FallbackResult<string> = queueForLater("ai", "op", {}, "u");
  queueForLater("analytics", "op", null, "u", "low", 5);
  // @ts-expect-error the priority is a union
  queueForLater("ai", "op", {}, "u", "urgent");
  void queued;

  configure({ cache: { maxEntries: 1, maxBytes: 1, defaultTtlMs: 1, staleIfErrorMs: 1 } });
  configure({ queue: { maxSize: 1, leaseMs: 1, maxPayloadBytes: 1 }, failures: { windowMs: 1, maxPerService: 1 } });
  // @ts-expect-error unknown settings are rejected
  configure({ cache: { ttl: 1 } });
  configure({ storagePath: '.data/fallbacks.db', durability: 'fsync', queue: { maxSize: 1 } });
  configure({ busyTimeoutMs: 100 });
  configure({ redact: (message, error) => (error instanceof Error ? error.name : message.replace(/sk-[\w-]+/g, '[key]')) });
  configure({ redact: null });
  configure({ redact: undefined });
  // @ts-expect-error redact is a function
  configure({ redact: 42 });
  // @ts-expect-error redact returns a string
  configure({ redact: () => 1 });
  // @ts-expect-error busyTimeoutMs is a number
  configure({ busyTimeoutMs: '100' });
  // @ts-expect-error durability is 'normal' | 'fsync'
  configure({ storagePath: 'x.db', durability: 'always' });
  // @ts-expect-error storage settings are not bounds of a section
  configure({ cache: { storagePath: 'x.db' } });

  const entry: CachedAIResponse | null = aiResponseCache.get("p", "m");
  aiResponseCache.set("p", { any: 1 }, "m");
  aiResponseCache.set("p", "x", "m", 1000);
  const deleted: void | boolean = aiResponseCache.delete("p", "m");
  const stats = aiResponseCache.getStats();
  const size: number = stats.size;
  const oldest: Date | undefined = stats.oldestEntry;
  void entry;
  void deleted;
  void size;
  void oldest;

  const id: string = backgroundJobQueue.enqueue({
    type: "ai", operation: "op", payload: {}, userId: "u", priority: "low", retryCount: 0, maxRetries: 3,
  });
  // @ts-expect-error id, createdAt and status are not given to enqueue
  backgroundJobQueue.enqueue({ id: "x", type: "ai", operation: "op", payload: {}, userId: "u", priority: "low", retryCount: 0, maxRetries: 3 });
  const job: QueuedJob | null = backgroundJobQueue.dequeue();
  backgroundJobQueue.complete(id);
  backgroundJobQueue.fail(id, "e");
  const all: QueuedJob[] = backgroundJobQueue.getAll();
  const pending: QueuedJob[] = backgroundJobQueue.getByStatus("pending");
  // @ts-expect-error the status is a union
  backgroundJobQueue.getByStatus("done");
  const mine: QueuedJob[] = backgroundJobQueue.getByUser("u");
  const firstPage: QueuedJob[] = backgroundJobQueue.getAll({ limit: 50 });
  backgroundJobQueue.getAll({ limit: 50, offset: 50 });
  backgroundJobQueue.getByStatus("failed", { offset: 10 });
  backgroundJobQueue.getByUser("u", {});
  const pageOptions: PageOptions = { limit: 1 };
  integrationFailureManager.getFailures(undefined, pageOptions);
  integrationFailureManager.getFailures("s", { limit: 5, offset: 5 });
  // @ts-expect-error the page options are numbers
  backgroundJobQueue.getAll({ limit: "50" });
  // @ts-expect-error only limit and offset
  backgroundJobQueue.getByStatus("pending", { size: 5 });
  void firstPage;
  backgroundJobQueue.clearCompleted();
  const handle: WorkerHandle = backgroundJobQueue.process(
    { ai: async (job, signal) => { void job.payload; void signal.aborted; }, analytics: () => undefined },
    { concurrency: 2, perUserConcurrency: 1, pollIntervalMs: 100, jobTimeoutMs: 1000, onDeadLetter: (job) => void job.id },
  );
  await handle.stop({ graceMs: 100 });
  backgroundJobQueue.process(async (job) => job.id);
  // @ts-expect-error handlers are keyed by job type
  backgroundJobQueue.process({ email: async () => undefined });
  const drainOptions: DrainOptions = { maxJobs: 10, maxMs: 5000, concurrency: 2, jobTimeoutMs: 1000, onFailed: (job, error) => void [job.id, error] };
  const drained: DrainResult = await backgroundJobQueue.drain({ analytics: async (job) => void job.payload }, drainOptions);
  const left: number | null = drained.remaining;
  const why: "nothingDue" | "maxJobs" | "maxMs" | "storageError" = drained.stoppedBy;
  void [left, why, drained.processed, drained.completed, drained.failed, drained.deadLettered, drained.elapsedMs, drained.error?.code];
  await new BackgroundJobQueue().drain(async () => undefined);
  // @ts-expect-error a drain polls for nothing
  backgroundJobQueue.drain(async () => undefined, { pollIntervalMs: 100 });
  // @ts-expect-error the budget is a number
  backgroundJobQueue.drain(async () => undefined, { maxJobs: "5" });
  const retried: number = backgroundJobQueue.retryFailed();
  backgroundJobQueue.retryFailed("job_1_abc");
  void retried;
  const counts: { total: number; pending: number; processing: number; completed: number; failed: number } =
    backgroundJobQueue.getStats();
  void job;
  void all;
  void pending;
  void mine;
  void counts;

  integrationFailureManager.recordFailure("s", "o", "e", "r");
  const failures: IntegrationFailure[] = integrationFailureManager.getFailures();
  const skip: boolean = integrationFailureManager.shouldSkipService("s");
  integrationFailureManager.shouldSkipService("s", 5);
  integrationFailureManager.clearFailures();
  integrationFailureManager.clearFailures("s");
  const perService: Record<string, { count: number; lastFailure: Date }> = integrationFailureManager.getStats();
  void failures;
  void skip;
  void perService;

  new AIResponseCache();
  new AIResponseCache({ maxEntries: 10, maxBytes: 1024, defaultTtlMs: 1000, staleIfErrorMs: 0 });
  new BackgroundJobQueue({ maxSize: 10, leaseMs: 1000, maxPayloadBytes: 1024 });
  new BackgroundJobQueue({ backoffMs: [1_000, 10_000] });
  configure({ queue: { backoffMs: [60_000] } });
  new BackgroundJobQueue({ maxBytes: 64 * 1024 * 1024 });
  configure({ queue: { maxBytes: 1024 }, failures: { maxBytes: 1024 } });
  new IntegrationFailureManager({ maxBytes: 1024 });
  // @ts-expect-error maxBytes is a number
  new BackgroundJobQueue({ maxBytes: '1 MiB' });
  // @ts-expect-error backoffMs is an array of numbers
  new BackgroundJobQueue({ backoffMs: 1000 });
  new BackgroundJobQueue({ maxSize: 10, storagePath: '/var/lib/app/jobs.db', durability: 'normal' });
  new AIResponseCache({ storagePath: 'cache.db', busyTimeoutMs: 50 });
  new IntegrationFailureManager({ storagePath: 'failures.db', windowMs: 1 });
  // @ts-expect-error storagePath is a string
  new AIResponseCache({ storagePath: 1 });
  new IntegrationFailureManager({ windowMs: 1000, maxPerService: 10 });
  // @ts-expect-error unknown constructor options are rejected
  new AIResponseCache({ size: 1 });
}
void usage;
