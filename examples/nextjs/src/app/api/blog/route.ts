// Example 1: generate a blog post (cache, then default, when the model fails).
import { generateBlogPost } from "@/lib/scenarios";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST(request: Request) {
  const { prompt = "real estate", userId = "user-1" } = await body<{ prompt: string; userId: string }>(request);
  return json(await generateBlogPost(prompt, userId));
}
