// Runs once when the server starts.
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs" && process.env.FALLBACKS_WORKER !== "off") {
    const { startWorker } = await import("./lib/worker");
    startWorker();
  }
}
