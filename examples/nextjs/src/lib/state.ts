// A snapshot of the fallbacks' state, for /api/state and the /fallbacks page.

import {
  aiResponseCache,
  backgroundJobQueue,
  getCircuitBreakerStatus,
  getBudgets,
  getCooldowns,
  getLimits,
  getStorageStatus,
  integrationFailureManager,
  MODEL_BREAKERS,
} from "@/lib/fallback-mechanisms";
import { fallbackTimeline, type Timeline } from "./timeline";

export interface FallbackState {
  cache: { size: number; hits: number; misses: number; hitRate: number | null; oldestEntry: string | null; newestEntry: string | null };
  queue: { total: number; pending: number; processing: number; completed: number; failed: number };
  nextJobs: { id: string; type: string; operation: string; priority: string; dueAt: string; retryCount: number; lastError: string | null }[];
  services: { service: string; failures: number; lastFailure: string; skippedUpFront: boolean }[];
  storage: {
    backend: "memory" | "sqlite" | "redis";
    location: string | null;
    reachable: boolean;
    lastError: string | null;
    lastErrorAt: string | null;
    localJobs: number;
    /** On Redis: jobs found gone (deleted or evicted) and dropped, by every instance. */
    missingJobs: number | null;
    /** On Redis: writes kept while the server was away that it later refused for good. */
    setAsideWrites: number;
    /** On Redis: the server's maxmemory-policy (anything but noeviction may lose jobs). */
    evictionPolicy: string | null;
    /** On Redis: "cluster" or "standalone", once the server has answered. */
    redisMode: "standalone" | "cluster" | null;
    /** On Redis: the copy the synchronous reads are answered from, and whether it is live. */
    localCopy: { live: boolean; entries: number; bytes: number } | null;
  };
  /** Models benched after a rate limit or an overload, ending soonest first (shared through the store). */
  cooldowns: { name: string; since: string; until: string; remainingMs: number; reason: string }[];
  /** This process's circuit breakers, and the benched models as open ones. */
  breakers: { name: string; state: string; failureCount: number; openedAt: string | null; cooldownUntil: string | null }[];
  /** The models' circuit breakers kept in the store, shared by every instance. */
  sharedBreakers: { name: string; state: string; failureCount: number; openedAt: string | null; probeHeldBy: string | null; probeSince: string | null }[];
  /** The models' rate limits (shared) and what every instance used of them in the last minute. */
  limits: {
    name: string;
    requests: number;
    requestsPerMinute: number | null;
    tokens: number;
    tokensPerMinute: number | null;
    concurrent: number;
    concurrency: number | null;
  }[];
  /** The budgets (shared) and what was spent of them in the current period. */
  budgets: { key: string; tokens: number; tokenBudget: number | null; cost: number; costBudget: number | null; per: string; resetsAt: string }[];
  /** Fallbacks per minute over the last hour, counted by this process. */
  timeline: Timeline;
  at: string;
}

/** How many pending jobs the status page reads (it shows the first 5 due). */
export const NEXT_JOBS_PAGE = 50;

/**
 * The limits or budgets in the store; none while the store cannot be read
 * (Redis away: the page still shows, its storage section says why).
 */
function storeOrNothing<T extends object>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (typeof error?.code === "string" && error.code.startsWith("STORAGE_")) return {} as T;
    throw error;
  }
}

export function fallbackState(): FallbackState {
  const cache = aiResponseCache.getStats();
  const hits = cache.hits ?? 0;
  const misses = cache.misses ?? 0;
  const queue = backgroundJobQueue.getStats();
  // A page, not the whole queue: listing every pending job holds the server's
  // JavaScript thread for O(n) (hundreds of ms at 100k jobs). The first
  // NEXT_JOBS_PAGE in enqueue order are sorted by due time, so with more
  // pending than that the table shows the soonest of the oldest ones.
  const nextJobs = backgroundJobQueue
    .getByStatus("pending", { limit: NEXT_JOBS_PAGE })
    .map((job) => ({
      id: job.id,
      type: job.type,
      operation: job.operation,
      priority: job.priority,
      dueAt: (job.nextRetryAt ?? job.createdAt).toISOString(),
      retryCount: job.retryCount,
      lastError: job.lastError ?? null,
    }))
    .sort((a, b) => a.dueAt.localeCompare(b.dueAt))
    .slice(0, 5);
  const services = Object.entries(integrationFailureManager.getStats())
    .map(([service, data]) => ({
      service,
      failures: data.count,
      lastFailure: data.lastFailure.toISOString(),
      skippedUpFront: integrationFailureManager.shouldSkipService(service, 3),
    }))
    .sort((a, b) => b.lastFailure.localeCompare(a.lastFailure));
  // Where the state is kept (on Redis: one round trip, within redisTimeoutMs).
  const storage = getStorageStatus();
  const cooldowns = Object.entries(getCooldowns())
    .map(([name, c]) => ({ name, since: c.since.toISOString(), until: c.until.toISOString(), remainingMs: c.remainingMs, reason: c.reason }))
    .sort((a, b) => a.until.localeCompare(b.until));
  const status = Object.entries(getCircuitBreakerStatus());
  // The breakers this app configured by name are the store's, shared; the
  // rest are this process's (and the benched models, shown as open ones).
  const isShared = (name: string) => Object.hasOwn(MODEL_BREAKERS, name);
  const breakers = status
    .filter(([name]) => !isShared(name))
    .map(([name, b]) => ({
      name,
      state: b.state,
      failureCount: b.failureCount,
      openedAt: b.openedAt?.toISOString() ?? null,
      cooldownUntil: b.cooldownUntil?.toISOString() ?? null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const sharedBreakers = status
    .filter(([name, b]) => isShared(name) && b.shared)
    .map(([name, b]) => ({
      name,
      state: b.state,
      failureCount: b.failureCount,
      openedAt: b.openedAt?.toISOString() ?? null,
      probeHeldBy: b.probeHeldBy,
      probeSince: b.probeSince?.toISOString() ?? null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const limits = Object.entries(storeOrNothing(getLimits))
    .map(([name, l]) => ({
      name,
      requests: l.requests,
      requestsPerMinute: l.limits.requestsPerMinute ?? null,
      tokens: l.tokens,
      tokensPerMinute: l.limits.tokensPerMinute ?? null,
      concurrent: l.concurrent,
      concurrency: l.limits.concurrency ?? null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const budgets = Object.entries(storeOrNothing(getBudgets))
    .map(([key, b]) => ({
      key,
      tokens: b.tokens,
      tokenBudget: b.limits.tokens ?? null,
      cost: b.cost,
      costBudget: b.limits.cost ?? null,
      per: b.limits.per,
      resetsAt: b.resetsAt.toISOString(),
    }))
    .sort((a, b) => a.key.localeCompare(b.key));
  const now = Date.now();
  return {
    cache: {
      size: cache.size,
      hits,
      misses,
      hitRate: hits + misses === 0 ? null : hits / (hits + misses),
      oldestEntry: cache.oldestEntry?.toISOString() ?? null,
      newestEntry: cache.newestEntry?.toISOString() ?? null,
    },
    queue,
    nextJobs,
    services,
    storage: { ...storage, lastErrorAt: storage.lastErrorAt?.toISOString() ?? null },
    cooldowns,
    breakers,
    sharedBreakers,
    limits,
    budgets,
    timeline: fallbackTimeline(now),
    at: new Date(now).toISOString(),
  };
}
