// Fallbacks per minute over the last hour, by type: stacked bars drawn as
// SVG on the server (no chart library, no client JavaScript).

import { FALLBACK_TYPES, MINUTES, type Timeline, type TimelineType } from "@/lib/timeline";

export const TYPE_STYLE: Record<TimelineType, { color: string; label: string }> = {
  alternative: { color: "#5b5bd6", label: "another model answered" },
  cache: { color: "#2f7d4f", label: "a saved answer was used" },
  default: { color: "#8a94a6", label: "the default answer was used" },
  queue: { color: "#d08a1c", label: "work was queued for later" },
  skip: { color: "#b3452c", label: "a step was skipped" },
};

const WIDTH = 640;
const HEIGHT = 230;
const LEFT = 36;
const RIGHT = 12;
const TOP = 30;
const BOTTOM = 42;
const PLOT_W = WIDTH - LEFT - RIGHT;
const PLOT_H = HEIGHT - TOP - BOTTOM;
const SLOT = PLOT_W / MINUTES;

/** A round step (1, 2, 5 × 10^k) giving about four gridlines up to `max`. */
function step(max: number): number {
  const rough = Math.max(1, max / 4);
  const power = 10 ** Math.floor(Math.log10(rough));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

export function FallbackChart({ timeline }: { timeline: Timeline }) {
  const stacked = timeline.minutes.map((m) => FALLBACK_TYPES.reduce((sum, type) => sum + m.counts[type], 0));
  const peak = Math.max(0, ...stacked);
  const every = step(peak);
  const top = Math.max(every, Math.ceil(peak / every) * every);
  const y = (count: number) => TOP + PLOT_H - (count / top) * PLOT_H;
  const ticks = Array.from({ length: Math.round(top / every) + 1 }, (_, i) => i * every);
  const total = FALLBACK_TYPES.reduce((sum, type) => sum + timeline.totals[type], 0);
  const summary =
    total === 0
      ? "No fallbacks in the last hour."
      : `${plural(total, "fallback", "fallbacks")} in the last hour: ` +
        FALLBACK_TYPES.filter((type) => timeline.totals[type] > 0)
          .map((type) => `${timeline.totals[type]} ${type}`)
          .join(", ") +
        `; at most ${peak} in one minute.`;

  return (
    <svg
      className="chart"
      viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
      role="img"
      aria-labelledby="timeline-title timeline-desc"
      data-testid="fallback-chart"
      data-total={total}
    >
      <title id="timeline-title">Fallbacks per minute over the last hour, by type</title>
      <desc id="timeline-desc">{summary}</desc>

      {/* Legend */}
      <g fontSize="11" fill="#5b6475">
        {FALLBACK_TYPES.map((type, i) => (
          <g key={type} transform={`translate(${LEFT + i * 118}, 8)`}>
            <rect width="10" height="10" rx="2" fill={TYPE_STYLE[type].color} />
            <text x="15" y="9">
              {type}
            </text>
          </g>
        ))}
      </g>

      {/* Gridlines and the count axis */}
      <g fontSize="10" fill="#5b6475">
        {ticks.map((tick) => (
          <g key={tick}>
            <line x1={LEFT} x2={WIDTH - RIGHT} y1={y(tick)} y2={y(tick)} stroke={tick === 0 ? "#9aa3b2" : "#e7eaf0"} />
            <text x={LEFT - 6} y={y(tick) + 3} textAnchor="end">
              {tick}
            </text>
          </g>
        ))}
        <text transform={`translate(10, ${TOP + PLOT_H / 2}) rotate(-90)`} textAnchor="middle">
          per minute
        </text>
      </g>

      {/* Bars: one stack per minute, oldest on the left */}
      <g data-testid="chart-bars">
        {timeline.minutes.map((minute, i) => {
          let base = 0;
          return FALLBACK_TYPES.filter((type) => minute.counts[type] > 0).map((type) => {
            const count = minute.counts[type];
            const from = y(base);
            base += count;
            const to = y(base);
            return (
              <rect
                key={`${minute.minutesAgo}-${type}`}
                x={LEFT + i * SLOT + 1}
                y={to}
                width={Math.max(1, SLOT - 2)}
                height={Math.max(1, from - to)}
                fill={TYPE_STYLE[type].color}
                data-type={type}
                data-minutes-ago={minute.minutesAgo}
                data-count={count}
              >
                <title>{`${plural(count, "fallback", "fallbacks")} (${type}) ${minute.minutesAgo === 0 ? "this minute" : `${minute.minutesAgo} min ago`}`}</title>
              </rect>
            );
          });
        })}
      </g>

      {/* The time axis */}
      <g fontSize="10" fill="#5b6475">
        {[60, 45, 30, 15, 0].map((ago) => {
          const x = LEFT + (MINUTES - ago) * SLOT;
          return (
            <g key={ago}>
              <line x1={x} x2={x} y1={TOP + PLOT_H} y2={TOP + PLOT_H + 4} stroke="#9aa3b2" />
              <text x={x} y={TOP + PLOT_H + 15} textAnchor={ago === 0 ? "end" : ago === 60 ? "start" : "middle"}>
                {ago === 0 ? "now" : ago}
              </text>
            </g>
          );
        })}
        <text x={LEFT + PLOT_W / 2} y={HEIGHT - 6} textAnchor="middle">
          minutes ago
        </text>
      </g>

      {total === 0 ? (
        <text x={LEFT + PLOT_W / 2} y={TOP + PLOT_H / 2} textAnchor="middle" fontSize="13" fill="#5b6475">
          No fallbacks in the last hour
        </text>
      ) : null}
    </svg>
  );
}
