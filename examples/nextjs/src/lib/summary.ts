// Listing summaries: gpt-4o writes them, gpt-4o-mini stands in, then the
// last summary of the same listing is replayed from the cache, or a default
// one is shown. Both models have a shared breaker and rate limits (by name,
// ./fallback-mechanisms), and every user a daily token budget: the free
// plan's. The models are simulated (./services), switched from /api/simulate.

import { executeWithFallback } from "@/lib/fallback-mechanisms";
import { textModel, type GeneratedText } from "./services";

/** What summaries are cached under, whichever model wrote them. */
export const SUMMARY_MODEL_ID = "summary:gpt-4o>gpt-4o-mini";

/** Tokens a user may spend on summaries per UTC day: two or three of them. */
export const FREE_PLAN_TOKENS_PER_DAY = 1_000;

export const SUMMARY_DEFAULT: GeneratedText = {
  text: "A summary is not available right now. The full listing is below.",
  usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 },
};

const gpt4o = textModel("gpt-4o");
const gpt4oMini = textModel("gpt-4o-mini");

export async function summarizeListing(listing: string, userId: string) {
  return executeWithFallback<GeneratedText>(() => gpt4o.generate(listing), {
    operationName: "summarize_listing",
    // The primary's name: its breaker and limits are configured under it.
    service: "gpt-4o",
    userId,
    alternatives: [{ name: "gpt-4o-mini", operation: () => gpt4oMini.generate(listing) }],
    // Checked before each model is called, charged with the answer's
    // `usage.totalTokens` (read from the AI SDK's result shape) after it.
    budget: { key: `user:${userId}`, tokens: FREE_PLAN_TOKENS_PER_DAY, per: "day" },
    cacheKey: { prompt: listing, modelId: SUMMARY_MODEL_ID },
    defaultValue: SUMMARY_DEFAULT,
  });
}
