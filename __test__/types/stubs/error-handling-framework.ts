// The usage document's last example imports `executeService` from
// `@/lib/error-handling-framework`: an app points that file at this package.
export * from "fallback-mechanisms";
