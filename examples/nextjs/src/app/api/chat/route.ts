// A streaming chat answer (plain text, chunk by chunk) from Claude, Haiku,
// the cache or the default; which one answered is in the headers:
// x-fallback-type (none, alternative, cache, default), x-alternative (the
// model that stood in), x-benched (models passed over while cooling down),
// x-fallback-message (the friendly message, URI-encoded).
import { streamChat } from "@/lib/chat";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

/** The answer's chunks as UTF-8 bytes (a Response body streams bytes). */
function utf8(stream: ReadableStream<string | Uint8Array>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return stream.pipeThrough(
    new TransformStream<string | Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
      },
    }),
  );
}

export async function POST(request: Request) {
  const { prompt = "buying a first home", userId = "user-1" } = await body<{ prompt: string; userId: string }>(request);
  const result = await streamChat(prompt, userId);
  if (!result.success || !result.data) {
    return json({ error: result.error?.message ?? "no answer", message: result.message }, 503);
  }
  const metadata = result.metadata;
  const headers = new Headers({
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    "x-fallback-type": metadata?.usedFallback ? (metadata.fallbackType ?? "unknown") : "none",
    "x-fallback-message": encodeURIComponent(result.message ?? ""),
  });
  if (metadata?.alternative) headers.set("x-alternative", metadata.alternative);
  if (metadata?.benched?.length) headers.set("x-benched", metadata.benched.join(", "));
  return new Response(utf8(result.data), { headers });
}
