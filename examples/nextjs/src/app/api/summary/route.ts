// A listing summary from gpt-4o, gpt-4o-mini, the cache or the default, as
// JSON: `text`, and what the guards did: `metadata.alternative` (the model
// that stood in), `metadata.limited` (models passed over for a rate limit),
// `metadata.overBudget` (the user's spent budget), `metadata.fallbackType`.
import { summarizeListing } from "@/lib/summary";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(request: Request) {
  const { listing = "2-bed flat, Leith", userId = "user-1" } = await body<{ listing: string; userId: string }>(request);
  const result = await summarizeListing(listing, userId);
  return json({
    success: result.success,
    text: result.data?.text ?? null,
    message: result.message,
    // Empty when gpt-4o answered.
    metadata: result.metadata ?? {},
    error: result.error ? { message: result.error.message, code: (result.error as Error & { code?: string }).code ?? null } : null,
  });
}
