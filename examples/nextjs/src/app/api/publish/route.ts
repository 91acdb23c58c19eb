// Example 4: generate content and publish it to several channels.
import { generateAndPublishContent } from "@/lib/scenarios";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(request: Request) {
  const { prompt = "open house", userId = "user-1", channels = ["facebook", "linkedin", "x"] } = await body<{
    prompt: string;
    userId: string;
    channels: string[];
  }>(request);
  return json(await generateAndPublishContent(prompt, userId, channels));
}
