// Simulated outside services that the test (or you, from /api/simulate) can
// tell to fail. Kept on globalThis: every route bundle of the app shares it.

export interface ServiceSwitches {
  /** The AI model (Bedrock in the usage document). */
  model: boolean;
  /** Facebook's Graph API. */
  facebook: boolean;
  /** The analytics warehouse. */
  analytics: boolean;
  /** Publishing channels that are down, by name. */
  downChannels: string[];
  /** Whether this instance's background worker takes jobs (false: they wait for another instance, or /api/cron/drain). */
  worker: boolean;
}

interface SimulatedWorld {
  switches: ServiceSwitches;
  calls: { model: number; facebook: number; analytics: number };
  synced: string[];
}

const KEY = Symbol.for("fallback-mechanisms-example.world");

function world(): SimulatedWorld {
  const holder = globalThis as unknown as Record<symbol, SimulatedWorld | undefined>;
  holder[KEY] ??= {
    switches: { model: true, facebook: true, analytics: true, downChannels: [], worker: true },
    calls: { model: 0, facebook: 0, analytics: 0 },
    synced: [],
  };
  return holder[KEY];
}

export function switches(): ServiceSwitches & { calls: SimulatedWorld["calls"]; synced: string[] } {
  const w = world();
  return { ...w.switches, downChannels: [...w.switches.downChannels], calls: { ...w.calls }, synced: [...w.synced] };
}

export function setSwitches(update: Partial<ServiceSwitches>): void {
  const w = world();
  w.switches = { ...w.switches, ...update };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const outputSchema = { type: "object" };

export function getBedrockClient() {
  return {
    async invoke(prompt: string, _schema: unknown): Promise<{ title: string; content: string }> {
      world().calls.model++;
      await pause(5);
      if (!world().switches.model) throw new Error("Bedrock: ThrottlingException (model unavailable)");
      return { title: `A guide to ${prompt}`, content: `Everything a buyer should know about ${prompt}.` };
    },
  };
}

export async function postToFacebook(contentId: string): Promise<{ postId: string }> {
  world().calls.facebook++;
  await pause(2);
  if (!world().switches.facebook) throw new Error("Facebook Graph API: 503 Service Unavailable");
  return { postId: `fb_${contentId}` };
}

export async function syncAnalyticsData(contentId: string): Promise<{ contentId: string; synced: true }> {
  world().calls.analytics++;
  await pause(2);
  if (!world().switches.analytics) throw new Error("Analytics warehouse unreachable");
  world().synced.push(contentId);
  return { contentId, synced: true };
}

export async function publishToChannel(channel: string, content: unknown): Promise<{ channel: string; published: boolean }> {
  await pause(2);
  if (world().switches.downChannels.includes(channel)) throw new Error(`${channel} is down`);
  void content;
  return { channel, published: true };
}

export async function processAIJob(payload: unknown): Promise<void> {
  void payload;
}

export async function processIntegrationJob(payload: { channel?: string; content?: unknown }): Promise<void> {
  if (payload.channel) await publishToChannel(payload.channel, payload.content);
}
