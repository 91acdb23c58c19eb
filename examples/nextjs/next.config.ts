import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // A native addon: loaded by Node.js at run time, never bundled.
  serverExternalPackages: ["fallback-mechanisms"],
  // This example sits inside the library's repository, which has a lockfile
  // of its own; the app's root is this folder.
  turbopack: { root: process.cwd() },
};

export default nextConfig;
