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
  /** The chat's primary model: streams an answer, is rate-limited (HTTP 429 with a Retry-After), or is down (HTTP 500). */
  claude: ChatModelMode;
  /** The chat's alternative model, the same three ways. */
  haiku: ChatModelMode;
  /** The Retry-After a rate-limited chat model sends, in seconds. */
  retryAfterSeconds: number;
  /** The listing summaries' primary model, the same three ways. */
  "gpt-4o": ChatModelMode;
  /** The listing summaries' alternative model, the same three ways. */
  "gpt-4o-mini": ChatModelMode;
}

export type ChatModelMode = "ok" | "rate-limited" | "down";
export type ChatModelName = "claude" | "haiku";
export type SummaryModelName = "gpt-4o" | "gpt-4o-mini";

interface SimulatedWorld {
  switches: ServiceSwitches;
  calls: { model: number; facebook: number; analytics: number } & Record<ChatModelName | SummaryModelName, number>;
  synced: string[];
}

const KEY = Symbol.for("fallback-mechanisms-example.world");

function world(): SimulatedWorld {
  const holder = globalThis as unknown as Record<symbol, SimulatedWorld | undefined>;
  holder[KEY] ??= {
    switches: {
      model: true,
      facebook: true,
      analytics: true,
      downChannels: [],
      worker: true,
      claude: "ok",
      haiku: "ok",
      retryAfterSeconds: 60,
      "gpt-4o": "ok",
      "gpt-4o-mini": "ok",
    },
    calls: { model: 0, facebook: 0, analytics: 0, claude: 0, haiku: 0, "gpt-4o": 0, "gpt-4o-mini": 0 },
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

/** An error as an HTTP API client throws it: the status, and the response's headers. */
export class ModelHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly headers: Headers = new Headers(),
  ) {
    super(message);
    this.name = "ModelHttpError";
  }
}

const CHAT_ANSWERS: Record<ChatModelName, (prompt: string) => string> = {
  claude: (prompt) =>
    `Happy to help with ${prompt}. Start with the neighbourhood, then the price you can carry, then the paperwork; ask me about any of the three and I will go deeper.`,
  haiku: (prompt) => `Quick take on ${prompt}: neighbourhood first, then budget, then paperwork. Ask for more on any of them.`,
};

/**
 * A chat model that streams its answer a word at a time, as an AI SDK's
 * text stream does: a ReadableStream of strings, one chunk every 40 ms.
 * It fails before the first chunk the way its switch says: rate-limited
 * (429 with a Retry-After header) or down (500).
 */
export function chatModel(name: ChatModelName) {
  return {
    async stream(prompt: string, signal?: AbortSignal): Promise<ReadableStream<string>> {
      world().calls[name]++;
      await pause(30);
      const failure = modelFailure(name);
      if (failure) throw failure;
      const words = CHAT_ANSWERS[name](prompt).split(/(?<= )/);
      let next = 0;
      return new ReadableStream<string>({
        async pull(controller) {
          if (next > 0) await pause(40);
          if (signal?.aborted) controller.error(signal.reason);
          else if (next < words.length) controller.enqueue(words[next++]);
          else controller.close();
        },
      });
    },
  };
}

/** How a model failed, as its switch says: rate-limited (429 with a Retry-After) or down (500). */
function modelFailure(name: ChatModelName | SummaryModelName): ModelHttpError | null {
  const mode = world().switches[name];
  if (mode === "rate-limited") {
    const retryAfter = String(world().switches.retryAfterSeconds);
    return new ModelHttpError(`${name}: 429 Too Many Requests (rate limited)`, 429, new Headers({ "retry-after": retryAfter }));
  }
  if (mode === "down") return new ModelHttpError(`${name}: 500 Internal Server Error`, 500);
  return null;
}

/** What the AI SDK's generateText resolves to, as far as the app reads it. */
export interface GeneratedText {
  text: string;
  usage: { inputTokens: number; outputTokens: number; totalTokens: number };
}

const SUMMARIES: Record<SummaryModelName, (listing: string) => string> = {
  "gpt-4o": (listing) => `${listing}: a bright, well-kept home close to shops and transport, priced in line with the street.`,
  "gpt-4o-mini": (listing) => `${listing}: bright, central, fairly priced.`,
};

/** Every summary spends this many tokens (input and output), so budgets and limits add up predictably. */
export const SUMMARY_USAGE = { inputTokens: 150, outputTokens: 250, totalTokens: 400 } as const;

/**
 * A text model answering in one piece, as the AI SDK's generateText does:
 * the text and its token usage (which fallback-mechanisms reads for
 * `limits.tokensPerMinute` and `budget`). Fails the way its switch says.
 */
export function textModel(name: SummaryModelName) {
  return {
    async generate(listing: string): Promise<GeneratedText> {
      world().calls[name]++;
      await pause(20);
      const failure = modelFailure(name);
      if (failure) throw failure;
      return { text: SUMMARIES[name](listing), usage: { ...SUMMARY_USAGE } };
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
