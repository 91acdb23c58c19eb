// getCooldowns and the cooldownUntil of getCircuitBreakerStatus type-check
// as the README ("Cooldowns") shows them.
import { getCircuitBreakerStatus, getCooldowns, type Cooldown } from 'fallback-mechanisms';

export function benchedModels(): string[] {
  const cooldowns: Record<string, Cooldown> = getCooldowns();
  return Object.entries(cooldowns).map(
    ([name, { since, until, remainingMs, reason }]) =>
      `${name}: ${reason}, ${since.toISOString()} to ${until.toISOString()} (${remainingMs} ms left)`,
  );
}

export function benchedUntil(name: string): Date | undefined {
  return getCircuitBreakerStatus()[name]?.cooldownUntil;
}
