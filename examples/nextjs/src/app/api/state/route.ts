// The fallbacks' state as JSON (what /fallbacks shows).
import { fallbackState } from "@/lib/state";
import { json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET() {
  return json(fallbackState());
}
