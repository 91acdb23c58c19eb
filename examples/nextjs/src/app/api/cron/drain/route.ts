// For platforms without a long-lived worker (serverless functions): a
// scheduler calls this route (Vercel Cron: a "crons" entry in vercel.json),
// which runs the jobs due now within a budget and answers with what it did.
// With CRON_SECRET set it asks for `Authorization: Bearer <CRON_SECRET>`, as
// Vercel Cron sends it.
import { backgroundJobQueue } from "@/lib/fallback-mechanisms";
import { jobHandlers } from "@/lib/scenarios";
import { json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";
// No job starts after 8 s and none runs past 5 s: the route answers within 15 s.
export const maxDuration = 15;

export async function GET(request: Request) {
  const secret = process.env.CRON_SECRET;
  if (secret && request.headers.get("authorization") !== `Bearer ${secret}`) {
    return json({ error: "unauthorized" }, 401);
  }
  return json(await backgroundJobQueue.drain(jobHandlers, { maxJobs: 50, maxMs: 8_000, jobTimeoutMs: 5_000 }));
}
