// Moved to test/support/redis-server.ts. This re-export stays only while e2e.test.ts and token-cache.test.ts
// (changed on another branch right now) import from here; new code imports ./support/redis-server.
// Delete it with those imports.
export * from './support/redis-server'
