// Examples 5-7: manage the cache, the queue and the failure history.
import { aiResponseCache, backgroundJobQueue, integrationFailureManager } from "@/lib/fallback-mechanisms";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

interface ManageRequest {
  action: string;
  prompt: string;
  modelId: string;
  response: unknown;
  ttl: number;
  service: string;
  userId: string;
}

export async function POST(request: Request) {
  const { action, prompt = "", modelId = "", response, ttl, service, userId = "" } = await body<ManageRequest>(request);
  try {
    switch (action) {
      case "cache.set":
        aiResponseCache.set(prompt, response, modelId, ttl);
        return json({ ok: true, stats: aiResponseCache.getStats() });
      case "cache.get":
        return json({ ok: true, entry: aiResponseCache.get(prompt, modelId) });
      case "cache.delete":
        aiResponseCache.delete(prompt, modelId);
        return json({ ok: true, stats: aiResponseCache.getStats() });
      case "cache.clear":
        aiResponseCache.clear();
        return json({ ok: true, stats: aiResponseCache.getStats() });
      case "queue.stats": {
        // Counts come from getStats (O(1)), not from listing every pending job;
        // a user's jobs are listed one page at a time.
        const stats = backgroundJobQueue.getStats();
        return json({ ok: true, stats, pending: stats.pending, userJobs: backgroundJobQueue.getByUser(userId, { limit: 50 }) });
      }
      case "queue.clearCompleted":
        backgroundJobQueue.clearCompleted();
        return json({ ok: true, stats: backgroundJobQueue.getStats() });
      case "failures.stats":
        return json({ ok: true, stats: integrationFailureManager.getStats(), skip: service ? integrationFailureManager.shouldSkipService(service, 3) : undefined });
      case "failures.clear":
        integrationFailureManager.clearFailures(service);
        return json({ ok: true, stats: integrationFailureManager.getStats() });
      default:
        return json({ ok: false, error: `unknown action ${JSON.stringify(action)}` }, 400);
    }
  } catch (error) {
    return json({ ok: false, error: error.message, code: error.code }, 400);
  }
}
