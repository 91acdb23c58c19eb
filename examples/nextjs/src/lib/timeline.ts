// Fallbacks per minute over the last hour, by type, for the chart on
// /fallbacks. Counts what the library publishes on the diagnostics_channel
// "fallback-mechanisms:fallback": one message per fallback used (cache,
// default, queue, skip, alternative).
//
// Per instance: each server process counts the fallbacks it served itself,
// in its own memory. Two instances sharing a Redis show the same cache,
// queue and failure numbers on /fallbacks but each its own chart.
//
// Subscribed once per process, from instrumentation.ts at startup (and from
// the page, should it load first): Next.js may bundle this module more than
// once, so the ring and the subscription live on globalThis.

import diagnostics from "node:diagnostics_channel";

export const FALLBACK_TYPES = ["alternative", "cache", "default", "queue", "skip"] as const;
export type TimelineType = (typeof FALLBACK_TYPES)[number];
export type Counts = Record<TimelineType, number>;

/** How many minutes the ring keeps: one bucket each. */
export const MINUTES = 60;
const CHANNEL = "fallback-mechanisms:fallback";
const KEY = Symbol.for("fallback-mechanisms-example.timeline");

interface Bucket {
  /** The minute it counts (ms since the epoch / 60 000, floored); -1: never used. */
  minute: number;
  counts: Counts;
}

interface Ring {
  buckets: Bucket[];
  since: number;
}

const zero = (): Counts => ({ alternative: 0, cache: 0, default: 0, queue: 0, skip: 0 });
const minuteOf = (ms: number) => Math.floor(ms / 60_000);

function isType(type: unknown): type is TimelineType {
  return (FALLBACK_TYPES as readonly unknown[]).includes(type);
}

function ring(): Ring {
  const holder = globalThis as unknown as Record<symbol, Ring | undefined>;
  let kept = holder[KEY];
  if (!kept) {
    const created: Ring = { buckets: Array.from({ length: MINUTES }, () => ({ minute: -1, counts: zero() })), since: Date.now() };
    kept = holder[KEY] = created;
    diagnostics.subscribe(CHANNEL, (message) => record((message as { type?: unknown } | null)?.type, Date.now(), created));
  }
  return kept;
}

function record(type: unknown, now: number, into: Ring): void {
  // A type this chart does not know (a newer library's) is not drawn.
  if (!isType(type)) return;
  const minute = minuteOf(now);
  const bucket = into.buckets[minute % MINUTES];
  if (bucket.minute !== minute) {
    // A bucket last used an hour (or more) ago: start it again.
    bucket.minute = minute;
    bucket.counts = zero();
  }
  bucket.counts[type]++;
}

/** Starts counting (once per process). */
export function startTimeline(): void {
  ring();
}

export interface Timeline {
  /** Oldest first: MINUTES entries, the last one the current minute. */
  minutes: { minutesAgo: number; counts: Counts }[];
  totals: Counts;
  /** When this process started counting. */
  since: string;
}

/** The last hour as of `now`, a bucket per minute. */
export function fallbackTimeline(now = Date.now()): Timeline {
  const kept = ring();
  const current = minuteOf(now);
  const totals = zero();
  const minutes = [];
  for (let ago = MINUTES - 1; ago >= 0; ago--) {
    const bucket = kept.buckets[(current - ago) % MINUTES];
    const counts = bucket.minute === current - ago ? { ...bucket.counts } : zero();
    for (const type of FALLBACK_TYPES) totals[type] += counts[type];
    minutes.push({ minutesAgo: ago, counts });
  }
  return { minutes, totals, since: new Date(kept.since).toISOString() };
}
