// The background worker: drains ready jobs every half second. Started once
// per server process from instrumentation.ts (Node.js runtime only), unless
// FALLBACKS_WORKER=off; /api/simulate's `worker: false` pauses it.

import { processQueuedJobs } from "./scenarios";
import { switches } from "./services";

const KEY = Symbol.for("fallback-mechanisms-example.worker");

export function startWorker(intervalMs = Number(process.env.FALLBACKS_WORKER_INTERVAL_MS ?? 500)): void {
  const holder = globalThis as unknown as Record<symbol, NodeJS.Timeout | undefined>;
  if (holder[KEY]) return;
  let running = false;
  holder[KEY] = setInterval(async () => {
    if (running || !switches().worker) return;
    running = true;
    try {
      while (await processQueuedJobs()) {
        // keep going while jobs are ready
      }
    } finally {
      running = false;
    }
  }, intervalMs);
  holder[KEY].unref();
}
