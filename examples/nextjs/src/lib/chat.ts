// The streaming chat: Claude answers, Haiku stands in when Claude fails (a
// rate limit benches Claude for its Retry-After, on every call and every
// instance sharing the store), and when both fail the last answer to the
// same prompt is replayed from the cache, or a default one is. Both models'
// rate limits, shared by every instance, are set by name in
// ./fallback-mechanisms. The models are simulated (./services), switched
// from /api/simulate.

import { executeWithFallback } from "@/lib/fallback-mechanisms";
import { chatModel } from "./services";

/** What chat answers are cached under, whichever model gave them. */
export const CHAT_MODEL_ID = "chat:claude>haiku";

export const CHAT_DEFAULT_ANSWER = "The assistant is busy right now. Please try again in a minute.";

const claude = chatModel("claude");
const haiku = chatModel("haiku");

export async function streamChat(prompt: string, userId: string) {
  return executeWithFallback<ReadableStream<string>>((signal) => claude.stream(prompt, signal), {
    operationName: "chat",
    // The primary's name: what it is benched under, as `haiku` is below.
    service: "claude",
    userId,
    alternatives: [{ name: "haiku", operation: (signal) => haiku.stream(prompt, signal) }],
    cacheKey: { prompt, modelId: CHAT_MODEL_ID },
    defaultValue: CHAT_DEFAULT_ANSWER,
    // A cached or default answer comes back as a ReadableStream too, even
    // when no model returned one.
    stream: true,
  });
}
