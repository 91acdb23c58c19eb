// Alternatives and streams type-check as the README shows them (issue #13).
import {
  executeWithFallback,
  getUserFriendlyMessage,
  type FallbackType,
  type ServiceResult,
} from 'fallback-mechanisms';

declare function callModel(model: string, prompt: string, signal?: AbortSignal): Promise<string>;
declare function streamModel(model: string, prompt: string): Promise<ReadableStream<string>>;
declare function iterate(model: string): AsyncIterable<Uint8Array>;
declare function isQuotaError(error: unknown): Promise<boolean>;

export async function answer(prompt: string): Promise<string | undefined> {
  const result: ServiceResult<string> = await executeWithFallback((signal) => callModel('claude', prompt, signal), {
    operationName: 'ai.answer',
    cacheKey: { prompt, modelId: 'claude' },
    alternatives: [
      { name: 'haiku', operation: (signal) => callModel('haiku', prompt, signal) },
      { name: 'gpt', operation: () => callModel('gpt', prompt) },
    ],
    alternativesOn: (error) => error?.status !== 400,
    cooldownMs: 10_000,
    maxCooldownMs: 60_000,
    retry: { maxRetries: 1 },
    timeoutMs: 5_000,
    defaultValue: 'Sorry',
  });
  const type: FallbackType | undefined = result.metadata?.fallbackType;
  if (type === 'alternative') console.log(result.metadata?.alternative);
  return result.data;
}

export async function chat(prompt: string): Promise<ReadableStream<string> | undefined> {
  const result = await executeWithFallback(() => streamModel('claude', prompt), {
    operationName: 'ai.chat',
    cacheKey: { prompt, modelId: 'claude' },
    alternatives: [{ name: 'haiku', operation: () => streamModel('haiku', prompt) }],
    // An async rule is awaited.
    alternativesOn: async (error) => (await isQuotaError(error)) === false,
    defaultValue: 'The assistant is busy; try again in a minute.',
    stream: true,
  });
  return result.data;
}

export async function bytes(): Promise<void> {
  const result = await executeWithFallback(async () => iterate('claude'), {
    operationName: 'ai.bytes',
    defaultValue: new Uint8Array([104, 105]),
  });
  if (result.data) for await (const chunk of result.data) chunk.byteLength;
}

export const alternativeMessage: string = getUserFriendlyMessage(new Error('x'), 'alternative');
