// Runs once when the server starts.
export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  // Count fallbacks from the first request on (the chart on /fallbacks).
  const { startTimeline } = await import("./lib/timeline");
  startTimeline();
  if (process.env.FALLBACKS_WORKER !== "off") {
    const { startWorker } = await import("./lib/worker");
    startWorker();
  }
}
