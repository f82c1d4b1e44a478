// Moved to test/support/server-process.ts. This re-export stays only while e2e.test.ts and token-cache.test.ts
// (changed on another branch right now) import from here; new code imports ./support/server-process.
// Delete it with those imports.
export * from './support/server-process'
