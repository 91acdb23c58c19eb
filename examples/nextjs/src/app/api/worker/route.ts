// Run the worker once by hand: process every ready job now.
import { processQueuedJobs } from "@/lib/scenarios";
import { json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function POST() {
  const processed = [];
  for (let job = await processQueuedJobs(); job; job = await processQueuedJobs()) processed.push(job);
  return json({ processed });
}
