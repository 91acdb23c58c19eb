import type { ReactNode } from "react";
import "./globals.css";

export const metadata = { title: "Fallbacks", description: "fallback-mechanisms in a Next.js app" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
