"use client";

import { useState, type FormEvent } from "react";
import type { ChatModelMode, ChatModelName } from "@/lib/services";

interface Turn {
  id: number;
  prompt: string;
  answer: string;
  /** How many chunks of the body have arrived so far. */
  chunks: number;
  state: "streaming" | "done" | "failed";
  fallbackType: string;
  alternative: string | null;
  benched: string | null;
  message: string;
}

const MODES: ChatModelMode[] = ["ok", "rate-limited", "down"];

function source(turn: Turn): string {
  switch (turn.fallbackType) {
    case "none":
      return "Claude answered";
    case "alternative":
      return `${turn.alternative ?? "another model"} answered instead of Claude`;
    case "cache":
      return "replayed a saved answer";
    case "default":
      return "the default answer";
    default:
      return turn.fallbackType;
  }
}

export function Chat({ initialModes }: { initialModes: Record<ChatModelName, ChatModelMode> }) {
  const [prompt, setPrompt] = useState("buying a first home");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [modes, setModes] = useState(initialModes);
  const busy = turns.some((turn) => turn.state === "streaming");

  async function setMode(model: ChatModelName, mode: ChatModelMode) {
    const response = await fetch("/api/simulate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ [model]: mode }),
    });
    const now = (await response.json()) as Record<ChatModelName, ChatModelMode>;
    setModes({ claude: now.claude, haiku: now.haiku });
  }

  async function send(event: FormEvent) {
    event.preventDefault();
    const id = Date.now();
    const update = (change: Partial<Turn> | ((turn: Turn) => Partial<Turn>)) =>
      setTurns((all) => all.map((turn) => (turn.id === id ? { ...turn, ...(typeof change === "function" ? change(turn) : change) } : turn)));
    setTurns((all) => [
      ...all,
      { id, prompt, answer: "", chunks: 0, state: "streaming", fallbackType: "", alternative: null, benched: null, message: "" },
    ]);
    try {
      const response = await fetch("/api/chat", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt }),
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      update({
        fallbackType: response.headers.get("x-fallback-type") ?? "none",
        alternative: response.headers.get("x-alternative"),
        benched: response.headers.get("x-benched"),
        message: decodeURIComponent(response.headers.get("x-fallback-message") ?? ""),
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        update((turn) => ({ answer: turn.answer + value, chunks: turn.chunks + 1 }));
      }
      update({ state: "done" });
    } catch (error) {
      update({ state: "failed", message: error instanceof Error ? error.message : String(error) });
    }
  }

  return (
    <>
      <section aria-labelledby="models">
        <h2 id="models">Simulated models</h2>
        <div className="modes">
          {(["claude", "haiku"] as const).map((model) => (
            <div key={model} className="mode" data-testid={`mode-${model}`}>
              <strong>{model}</strong>
              {MODES.map((mode) => (
                <button key={mode} type="button" aria-pressed={modes[model] === mode} onClick={() => setMode(model, mode)}>
                  {mode}
                </button>
              ))}
            </div>
          ))}
        </div>
      </section>

      <section aria-labelledby="conversation">
        <h2 id="conversation">Conversation</h2>
        <ol className="turns" aria-live="polite">
          {turns.map((turn) => (
            <li key={turn.id} className="turn" data-testid="chat-turn" data-state={turn.state}>
              <p className="prompt">{turn.prompt}</p>
              <p className="answer" data-testid="chat-answer">
                {turn.answer}
                {turn.state === "streaming" ? <span className="cursor">▍</span> : null}
              </p>
              <p className="detail">
                <span data-testid="chat-source" data-fallback-type={turn.fallbackType}>
                  {turn.state === "failed" ? `failed: ${turn.message}` : source(turn)}
                </span>
                {turn.benched ? ` · benched: ${turn.benched}` : null} · <span data-testid="chat-chunks">{turn.chunks}</span> chunks
                {turn.fallbackType !== "none" && turn.message && turn.state !== "failed" ? ` · “${turn.message}”` : null}
              </p>
            </li>
          ))}
        </ol>
        <form className="ask" onSubmit={send}>
          <input aria-label="Your message" data-testid="chat-input" value={prompt} onChange={(e) => setPrompt(e.target.value)} />
          <button type="submit" data-testid="chat-send" disabled={busy || prompt.trim() === ""}>
            Send
          </button>
        </form>
      </section>
    </>
  );
}
