// What an application's src/lib/fallback-mechanisms.ts becomes: its whole body.
export * from "fallback-mechanisms";
