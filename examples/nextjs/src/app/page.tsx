import Link from "next/link";

export default function Home() {
  return (
    <main>
      <h1>fallback-mechanisms example</h1>
      <p>
        The usage document&apos;s scenarios as route handlers under <code>/api</code>, with simulated outside
        services you can switch off at <code>/api/simulate</code>.
      </p>
      <p>
        <Link href="/fallbacks">See what is falling back right now</Link>
      </p>
      <p>
        <Link href="/chat">Chat with a streaming model</Link> (Claude, with Haiku and the cache to fall back on)
      </p>
    </main>
  );
}
