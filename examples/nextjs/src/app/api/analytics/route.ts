// Example 3: sync analytics now, or queue the work for the background worker.
import { processAnalytics } from "@/lib/scenarios";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(request: Request) {
  const { contentId = "post-1", userId = "user-1" } = await body<{ contentId: string; userId: string }>(request);
  return json(await processAnalytics(contentId, userId));
}
