// /chat: the streaming chat route (/api/chat) in a page that reads the
// answer as it arrives, with the simulated models' switches.

import Link from "next/link";
import { switches } from "@/lib/services";
import { Chat } from "./chat";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export default function ChatPage() {
  const { claude, haiku } = switches();
  return (
    <main>
      <h1>Chat</h1>
      <p className="lead">
        Answers stream from Claude; when Claude is rate-limited or down, Haiku stands in; when both fail, the last answer to
        the same question is replayed from the cache. See <Link href="/fallbacks">what is falling back</Link>.
      </p>
      <Chat initialModes={{ claude, haiku }} />
    </main>
  );
}
