export * from "fallback-mechanisms";
