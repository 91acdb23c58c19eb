// /fallbacks: what is falling back right now, in words a non-expert reads at
// a glance. Rendered on the server from the live state; refreshed every 3 s.

import { fallbackState } from "@/lib/state";
import { FALLBACK_TYPES } from "@/lib/timeline";
import { FallbackChart, TYPE_STYLE } from "./chart";
import { AutoRefresh } from "./refresh";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

function Stat({ id, value, label, tone }: { id: string; value: string | number; label: string; tone?: "ok" | "warn" | "bad" }) {
  return (
    <div className={`number ${tone ?? ""}`}>
      <div className="value" data-testid={id}>
        {value}
      </div>
      <div className="label">{label}</div>
    </div>
  );
}

function ago(iso: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  return `${Math.round(seconds / 60)} min ago`;
}

function seconds(ms: number): string {
  const s = Math.ceil(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function inTime(iso: string, now: Date): string {
  const seconds = Math.round((new Date(iso).getTime() - now.getTime()) / 1000);
  if (seconds <= 0) return "now";
  if (seconds < 60) return `in ${seconds} s`;
  return `in ${Math.round(seconds / 60)} min`;
}

/** A count against its limit, as "3 / 10" ("3" with no limit). */
function ofLimit(used: number, limit: number | null): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return limit === null ? n(used) : `${n(used)} / ${n(limit)}`;
}

/** A UTC time to the minute, as "2026-12-08 00:00 UTC". */
function utc(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

const BREAKER_MEANS = {
  closed: "called as usual",
  open: "failing: passed over without a call",
  "half-open": "one trial call decides whether it is back",
} as const;

const STORES = { memory: "Memory", sqlite: "SQLite", redis: "Redis" } as const;
const SHARED = {
  memory: "kept by this server process alone",
  sqlite: "a file shared by the processes on this machine",
  redis: "shared by every instance of the app",
} as const;

export default function FallbacksPage() {
  const state = fallbackState();
  const now = new Date(state.at);
  const hitRate = state.cache.hitRate === null ? "—" : `${Math.round(state.cache.hitRate * 100)}%`;
  return (
    <main>
      <AutoRefresh everyMs={3000} />
      <h1>Fallbacks</h1>
      <p className="lead">How the app is coping with the services it depends on. Updates every few seconds.</p>

      <section aria-labelledby="timeline">
        <h2 id="timeline">Fallbacks in the last hour</h2>
        <div className="chart-row">
          <FallbackChart timeline={state.timeline} />
          <ul className="totals" aria-label="Fallbacks in the last hour, by type">
            {FALLBACK_TYPES.map((type) => (
              <li key={type}>
                <span className="swatch" style={{ background: TYPE_STYLE[type].color }} />
                <span className="count" data-testid={`timeline-total-${type}`}>
                  {state.timeline.totals[type]}
                </span>
                <span className="what">
                  <strong>{type}</strong>: {TYPE_STYLE[type].label}
                </span>
              </li>
            ))}
          </ul>
        </div>
        <p className="detail">Counted by this server instance since {ago(state.timeline.since, now)}; another instance counts its own.</p>
      </section>

      <section aria-labelledby="cache">
        <h2 id="cache">Saved AI answers</h2>
        <div className="numbers">
          <Stat id="cache-size" value={state.cache.size} label="answers saved for reuse" />
          <Stat id="cache-hits" value={state.cache.hits} label="times a saved answer was used" tone="ok" />
          <Stat id="cache-misses" value={state.cache.misses} label="times no saved answer was found" />
          <Stat id="cache-hit-rate" value={hitRate} label="of lookups found a saved answer" />
        </div>
      </section>

      <section aria-labelledby="queue">
        <h2 id="queue">Work saved for later</h2>
        <div className="numbers">
          <Stat id="queue-pending" value={state.queue.pending} label="waiting to be retried" tone={state.queue.pending ? "warn" : undefined} />
          <Stat id="queue-processing" value={state.queue.processing} label="being worked on now" />
          <Stat id="queue-completed" value={state.queue.completed} label="done after a retry" tone="ok" />
          <Stat id="queue-failed" value={state.queue.failed} label="gave up after every retry" tone={state.queue.failed ? "bad" : undefined} />
        </div>
        <table>
          <thead>
            <tr><th>Next up</th><th>Kind</th><th>Priority</th><th>Due</th><th>Tries so far</th><th>Last problem</th></tr>
          </thead>
          <tbody data-testid="next-jobs">
            {state.nextJobs.length === 0 ? (
              <tr><td className="empty" colSpan={6}>Nothing is waiting.</td></tr>
            ) : (
              state.nextJobs.map((job) => (
                <tr key={job.id}>
                  <td>{job.operation}</td>
                  <td>{job.type}</td>
                  <td>{job.priority}</td>
                  <td>{inTime(job.dueAt, now)}</td>
                  <td>{job.retryCount}</td>
                  <td>{job.lastError ?? "—"}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="services">
        <h2 id="services">Services that have been failing</h2>
        <table>
          <thead>
            <tr><th>Service</th><th>Recent failures</th><th>Last failed</th><th>Status</th></tr>
          </thead>
          <tbody data-testid="services">
            {state.services.length === 0 ? (
              <tr><td className="empty" colSpan={4}>No service has failed.</td></tr>
            ) : (
              state.services.map((s) => (
                <tr key={s.service} data-service={s.service}>
                  <td>{s.service}</td>
                  <td data-testid={`failures-${s.service}`}>{s.failures}</td>
                  <td>{ago(s.lastFailure, now)}</td>
                  <td>
                    {s.skippedUpFront ? (
                      <span className="pill">skipped for now (3+ failures in 5 min)</span>
                    ) : (
                      <span className="pill calm">tried as usual</span>
                    )}
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="cooldowns">
        <h2 id="cooldowns">Cooldowns</h2>
        <p className="detail top">Models that answered with a rate limit or an overload are left out of every call until their wait is over.</p>
        <table>
          <thead>
            <tr><th>Model</th><th>Benched since</th><th>Tried again</th><th>Why</th></tr>
          </thead>
          <tbody data-testid="cooldowns">
            {state.cooldowns.length === 0 ? (
              <tr><td className="empty" colSpan={4}>No model is cooling down.</td></tr>
            ) : (
              state.cooldowns.map((c) => (
                <tr key={c.name} data-cooldown={c.name}>
                  <td data-testid={`cooldown-${c.name}`}>{c.name}</td>
                  <td>{ago(c.since, now)}</td>
                  <td data-testid={`cooldown-${c.name}-left`}>{`in ${seconds(c.remainingMs)}`}</td>
                  <td>{c.reason}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </section>

      <section aria-labelledby="breakers">
        <h2 id="breakers">Circuit breakers</h2>
        <table>
          <thead>
            <tr><th>Service or model</th><th>State</th><th>Failures</th><th>Opened</th><th>Cooling down until</th></tr>
          </thead>
          <tbody data-testid="breakers">
            {state.breakers.length === 0 ? (
              <tr><td className="empty" colSpan={5}>Every circuit is closed.</td></tr>
            ) : (
              state.breakers.map((b) => (
                <tr key={b.name} data-breaker={b.name}>
                  <td>{b.name}</td>
                  <td>
                    <span className={`pill ${b.state === "closed" ? "calm" : ""}`} data-testid={`breaker-${b.name}`}>
                      {b.state}
                    </span>
                  </td>
                  <td>{b.failureCount}</td>
                  <td>{b.openedAt ? ago(b.openedAt, now) : "—"}</td>
                  <td data-testid={`breaker-${b.name}-cooldown`}>{b.cooldownUntil ? `${new Date(b.cooldownUntil).toISOString().slice(11, 19)} UTC (${inTime(b.cooldownUntil, now)})` : "—"}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
        <p className="detail">These breakers are kept by each server process; cooldowns are shared through the store, and so are the breakers below.</p>
      </section>

      <section aria-labelledby="shared">
        <h2 id="shared">Breakers, rate limits and budgets</h2>
        <p className="detail top">
          {state.storage.backend === "redis"
            ? "Shared by every instance of the app: when one of them finds a model failing or over its limit, or a user over budget, all of them act on it."
            : `Kept with the rest (${SHARED[state.storage.backend]}); on Redis, every instance of the app would act on the same ones.`}
        </p>
        <table>
          <thead>
            <tr><th>Model</th><th>Breaker</th><th>What it means</th><th>Failed calls seen</th><th>Opened</th><th>Trial call run by</th></tr>
          </thead>
          <tbody data-testid="shared-breakers">
            {state.sharedBreakers.length === 0 ? (
              <tr><td className="empty" colSpan={6}>No model with a shared breaker has been called yet.</td></tr>
            ) : (
              state.sharedBreakers.map((b) => (
                <tr key={b.name} data-shared-breaker={b.name}>
                  <td>{b.name}</td>
                  <td>
                    <span className={`pill ${b.state === "closed" ? "calm" : ""}`} data-testid={`shared-breaker-${b.name}`}>
                      {b.state}
                    </span>
                  </td>
                  <td>{BREAKER_MEANS[b.state as keyof typeof BREAKER_MEANS] ?? b.state}</td>
                  <td data-testid={`shared-breaker-${b.name}-failures`}>{b.failureCount}</td>
                  <td>{b.openedAt ? ago(b.openedAt, now) : "—"}</td>
                  <td data-testid={`shared-breaker-${b.name}-probe`}>
                    {b.probeHeldBy ? `instance ${b.probeHeldBy}${b.probeSince ? ` (since ${ago(b.probeSince, now)})` : ""}` : "nobody"}
                  </td>
                </tr>
              ))
            )}
          </tbody>
        </table>
        <table>
          <thead>
            <tr><th>Model</th><th>Requests in the last minute</th><th>Tokens in the last minute</th><th>Calls in flight</th></tr>
          </thead>
          <tbody data-testid="limits">
            {state.limits.length === 0 ? (
              <tr><td className="empty" colSpan={4}>No rate-limited model has been called in the last minute.</td></tr>
            ) : (
              state.limits.map((l) => (
                <tr key={l.name} data-limit={l.name}>
                  <td>{l.name}</td>
                  <td>
                    <span data-testid={`limit-${l.name}-requests`}>{ofLimit(l.requests, l.requestsPerMinute)}</span>
                    {l.requestsPerMinute !== null && l.requests >= l.requestsPerMinute ? <> <span className="pill">limit reached: passed over</span></> : null}
                  </td>
                  <td>
                    <span data-testid={`limit-${l.name}-tokens`}>{ofLimit(l.tokens, l.tokensPerMinute)}</span>
                    {l.tokensPerMinute !== null && l.tokens >= l.tokensPerMinute ? <> <span className="pill">limit reached: passed over</span></> : null}
                  </td>
                  <td data-testid={`limit-${l.name}-concurrent`}>{ofLimit(l.concurrent, l.concurrency)}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
        <table>
          <thead>
            <tr><th>Budget</th><th>Tokens spent</th><th>Cost spent</th><th>Per</th><th>Starts again</th><th>Status</th></tr>
          </thead>
          <tbody data-testid="budgets">
            {state.budgets.length === 0 ? (
              <tr><td className="empty" colSpan={6}>Nothing has been spent in the current periods.</td></tr>
            ) : (
              state.budgets.map((b) => {
                const spent = (b.tokenBudget !== null && b.tokens >= b.tokenBudget) || (b.costBudget !== null && b.cost >= b.costBudget);
                return (
                  <tr key={b.key} data-budget={b.key}>
                    <td>{b.key}</td>
                    <td data-testid={`budget-${b.key}-tokens`}>{ofLimit(b.tokens, b.tokenBudget)}</td>
                    <td data-testid={`budget-${b.key}-cost`}>{b.costBudget === null && b.cost === 0 ? "—" : ofLimit(b.cost, b.costBudget)}</td>
                    <td>{b.per}</td>
                    <td>
                      <span data-testid={`budget-${b.key}-resets`}>{utc(b.resetsAt)}</span> ({inTime(b.resetsAt, now)})
                    </td>
                    <td>
                      {spent ? <span className="pill">spent: calls refused until then</span> : <span className="pill calm">within budget</span>}
                    </td>
                  </tr>
                );
              })
            )}
          </tbody>
        </table>
        <p className="detail">
          A model over its limit is passed over for the next one; with none left, or a budget spent, the call falls back (a saved answer, a
          default).
        </p>
      </section>

      <section aria-labelledby="storage">
        <h2 id="storage">Where this is kept</h2>
        <div className="numbers">
          <Stat
            id="storage-backend"
            value={state.storage.redisMode === "cluster" ? "Redis Cluster" : STORES[state.storage.backend]}
            label={SHARED[state.storage.backend]}
          />
          <Stat
            id="storage-reachable"
            value={state.storage.reachable ? "yes" : "no"}
            label="answering right now"
            tone={state.storage.reachable ? "ok" : "bad"}
          />
          <Stat
            id="storage-local-jobs"
            value={state.storage.localJobs}
            label="jobs kept here until the store is back"
            tone={state.storage.localJobs ? "warn" : undefined}
          />
          {state.storage.backend === "redis" ? (
            <>
              <Stat
                id="storage-missing-jobs"
                value={state.storage.missingJobs ?? "?"}
                label="jobs the server lost (deleted or evicted)"
                tone={state.storage.missingJobs ? "bad" : undefined}
              />
              <Stat
                id="storage-set-aside"
                value={state.storage.setAsideWrites}
                label="kept writes the server refused for good"
                tone={state.storage.setAsideWrites ? "bad" : undefined}
              />
              <Stat
                id="storage-eviction-policy"
                value={state.storage.evictionPolicy ?? "?"}
                label="eviction policy (noeviction keeps jobs safe)"
                tone={state.storage.evictionPolicy && state.storage.evictionPolicy !== "noeviction" ? "warn" : undefined}
              />
            </>
          ) : null}
        </div>
        <p className="detail">
          {state.storage.location ? <code data-testid="storage-location">{state.storage.location}</code> : null} Last problem:{" "}
          <span data-testid="storage-last-error">
            {state.storage.lastError
              ? `${state.storage.lastError} (${state.storage.lastErrorAt ? ago(state.storage.lastErrorAt, now) : "just now"})`
              : "none"}
          </span>
        </p>
      </section>

      <footer>As of <span data-testid="as-of">{state.at}</span>.</footer>
    </main>
  );
}
