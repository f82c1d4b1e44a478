// Moved to test/support/helpers.ts. This re-export stays only while cli.test.ts, e2e.test.ts,
// token-cache.test.ts, store-contract.ts and store-contract.test.ts (changed on another branch
// right now) import from here; new code imports ./support/helpers. Delete it with those imports.
export * from './support/helpers'
