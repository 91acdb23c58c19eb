// Failure classes type-check as the README ("Failure classes") shows them.
import {
  classify,
  configure,
  executeWithFallback,
  type FailureClass,
  type FallbackAlternative,
  type ResultMetadata,
} from 'fallback-mechanisms';

const builtIn: FailureClass = classify(new Error('x'));

configure({
  classify: (error, fromBuiltIn) => {
    if (error instanceof Error && error.message.includes('quota')) return 'rateLimit';
    return fromBuiltIn(error);
  },
});
configure({ classify: null });
configure({ classify: undefined });

const bigger: FallbackAlternative<string> = {
  name: 'big-model',
  operation: async () => 'long answer',
  on: ['contextWindow'],
};

export async function summarise(): Promise<FailureClass | undefined> {
  const result = await executeWithFallback(async () => 'answer', {
    operationName: 'summarise',
    defaultValue: 'none',
    alternatives: [bigger, { name: 'lenient', operation: async () => 'ok', on: ['contentPolicy'] }],
  });
  const metadata: ResultMetadata | undefined = result.metadata;
  // Other metadata stays loosely typed, as before.
  const anything: unknown = metadata?.fallbackType;
  void anything;
  return result.metadata?.errorClass ?? builtIn;
}

// @ts-expect-error: not a failure class
const wrong: FailureClass = 'rate_limit';
void wrong;
// @ts-expect-error: `on` names failure classes
export const misnamed: FallbackAlternative<string> = { name: 'x', operation: async () => 'x', on: ['quota'] };
// @ts-expect-error: `classify` is a function
configure({ classify: 5 });
