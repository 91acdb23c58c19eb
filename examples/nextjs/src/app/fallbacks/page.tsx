// /fallbacks: what is falling back right now, in words a non-expert reads at
// a glance. Rendered on the server from the live state; refreshed every 3 s.

import { fallbackState } from "@/lib/state";
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

function inTime(iso: string, now: Date): string {
  const seconds = Math.round((new Date(iso).getTime() - now.getTime()) / 1000);
  if (seconds <= 0) return "now";
  if (seconds < 60) return `in ${seconds} s`;
  return `in ${Math.round(seconds / 60)} min`;
}

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

      <section aria-labelledby="storage">
        <h2 id="storage">Where this is kept</h2>
        <div className="numbers">
          <Stat id="storage-backend" value={STORES[state.storage.backend]} label={SHARED[state.storage.backend]} />
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
