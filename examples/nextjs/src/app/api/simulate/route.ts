// Tell the simulated outside services to fail (or recover).
import { setSwitches, switches, type ServiceSwitches } from "@/lib/services";
import { body, json } from "@/lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET() {
  return json(switches());
}

export async function POST(request: Request) {
  const update = await body<ServiceSwitches>(request);
  setSwitches(update);
  return json(switches());
}
